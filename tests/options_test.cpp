// Options: flavor presets, overrides, validation messages, text round trips.
#include "rmsprop/options.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "rmsprop/error.hpp"

namespace rmsprop {
namespace {

// The message of the InvalidOption that `f` throws ("" when it throws none).
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const InvalidOption& e) {
    return e.what();
  }
  return "";
}

void expect_error(const Options& o, const std::string& fragment) {
  const std::string message = error_of([&] { o.validate(); });
  EXPECT_NE(message.find(fragment), std::string::npos)
      << "expected an error containing '" << fragment << "', got '" << message << "'";
}

TEST(Options, DefaultsAreTorchRMSprop) {
  Options o;
  EXPECT_EQ(o, Options::from_flavor(Flavor::torch));
  EXPECT_EQ(o.lr, 1e-2);
  EXPECT_EQ(o.alpha, 0.99);
  EXPECT_EQ(o.eps, 1e-8);
  EXPECT_FALSE(o.eps_in_sqrt);
  EXPECT_EQ(o.initial_accumulator_value, 0);
  EXPECT_FALSE(o.lr_in_momentum);
  EXPECT_NO_THROW(o.validate());
}

struct Preset {
  Flavor flavor;
  double lr, alpha, eps;
  bool eps_in_sqrt;
  double v0;
  bool lr_in_momentum, decoupled;
};

TEST(Options, EachFlavorPresetHasItsFrameworksDefaults) {
  // The frameworks' defaults, as docs/flavors.md gives them (TF1 and optax have no default lr:
  // Keras's 1e-3).
  const Preset presets[] = {
      {Flavor::torch, 1e-2, 0.99, 1e-8, false, 0, false, false},
      {Flavor::tf1, 1e-3, 0.9, 1e-10, true, 1, true, false},
      {Flavor::keras, 1e-3, 0.9, 1e-7, true, 0, true, true},
      {Flavor::optax, 1e-3, 0.9, 1e-8, true, 0, true, false},
      {Flavor::lasagne, 1.0, 0.9, 1e-6, true, 0, true, false},
      {Flavor::caffe, 1e-2, 0.99, 1e-8, false, 0, false, false},
      {Flavor::ensmallen, 1e-2, 0.99, 1e-8, false, 0, false, false},
      {Flavor::timm_tf, 1e-2, 0.9, 1e-10, true, 1, true, false},
      {Flavor::hinton, 1e-3, 0.9, 1e-8, true, 0, false, false},
  };
  ASSERT_EQ(std::size(presets), all_flavors().size());
  for (const Preset& p : presets) {
    SCOPED_TRACE(std::string(to_string(p.flavor)));
    const Options o = Options::from_flavor(p.flavor);
    EXPECT_EQ(o.lr, p.lr);
    EXPECT_EQ(o.alpha, p.alpha);
    EXPECT_EQ(o.eps, p.eps);
    EXPECT_EQ(o.eps_in_sqrt, p.eps_in_sqrt);
    EXPECT_EQ(o.initial_accumulator_value, p.v0);
    EXPECT_EQ(o.lr_in_momentum, p.lr_in_momentum);
    EXPECT_EQ(o.decoupled_weight_decay, p.decoupled);
    EXPECT_EQ(o.momentum, 0);
    EXPECT_FALSE(o.centered);
    EXPECT_FALSE(o.bias_correction);
    EXPECT_NO_THROW(o.validate());
    EXPECT_EQ(flavor_from_string(to_string(p.flavor)), p.flavor);
  }
}

TEST(Options, AnExplicitOptionOverridesTheFlavorWhereverItStands) {
  const Options a = Options::from_pairs(
      std::vector<std::pair<std::string, std::string>>{{"eps", "1e-3"}, {"flavor", "tf1"}});
  EXPECT_EQ(a.eps, 1e-3);
  EXPECT_EQ(a.initial_accumulator_value, 1);  // the rest is still TF1's
  EXPECT_EQ(a.alpha, 0.9);
  const Options b = Options::from_pairs(std::vector<std::pair<std::string, std::string>>{
      {"flavor", "keras"}, {"weight-decay", "0.01"}, {"rho", "0.8"}});
  EXPECT_EQ(b.weight_decay, 0.01);
  EXPECT_EQ(b.alpha, 0.8);
  EXPECT_TRUE(b.decoupled_weight_decay);
}

TEST(Options, ValidationNamesTheFieldAndTheValue) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  auto with = [](auto change) {
    Options o;
    change(o);
    return o;
  };
  expect_error(with([](Options& o) { o.lr = -1; }), "lr=-1");
  expect_error(with([&](Options& o) { o.lr = inf; }), "lr=inf");
  expect_error(with([&](Options& o) { o.lr = nan; }), "lr=nan");
  expect_error(with([](Options& o) { o.alpha = -0.1; }), "alpha=-0.1");
  expect_error(with([](Options& o) { o.grad_avg_decay = -0.5; }), "grad_avg_decay=-0.5");
  // torch's ranges: decays and momentum of 1 and more are taken; only bias correction, which
  // divides by 1 − ρ^t, refuses a decay of 1
  EXPECT_NO_THROW(
      with([](Options& o) { o.alpha = 1, o.momentum = 1, o.weight_decay = 1; }).validate());
  EXPECT_NO_THROW(with([](Options& o) { o.alpha = 2.5, o.momentum = 1.5; }).validate());
  expect_error(with([](Options& o) { o.alpha = 1, o.bias_correction = true; }),
               "alpha=1: bias_correction divides by 1 - alpha^t");
  expect_error(
      with([](Options& o) { o.centered = true, o.grad_avg_decay = 1, o.bias_correction = true; }),
      "grad_avg_decay=1: bias_correction");
  expect_error(with([](Options& o) { o.eps = -1e-8; }), "eps=-1e-08");
  expect_error(with([&](Options& o) { o.eps = inf; }), "eps=inf");
  expect_error(with([](Options& o) { o.eps = 0; }), "eps=0");
  expect_error(with([](Options& o) { o.initial_accumulator_value = -1; }),
               "initial_accumulator_value=-1");
  expect_error(with([](Options& o) { o.momentum = -0.5; }), "momentum=-0.5");
  expect_error(with([](Options& o) { o.weight_decay = -0.1; }), "weight_decay=-0.1");
  expect_error(with([](Options& o) { o.nesterov = true; }),
               "nesterov=true: Nesterov needs momentum");
  expect_error(with([](Options& o) { o.weight_decay_uses_lr = false; }),
               "weight_decay_uses_lr=false");
  expect_error(
      with([](Options& o) { o.decoupled_weight_decay = true, o.weight_decay = 200, o.lr = 0.01; }),
      "weight_decay=200");
  expect_error(with([](Options& o) { o = Options::sgd(0.1), o.centered = true; }), "centered=true");
  expect_error(with([](Options& o) { o = Options::adagrad(), o.bias_correction = true; }),
               "bias_correction=true");
  expect_error(with([](Options& o) { o = Options::adam(), o.centered = true; }), "centered=true");
}

TEST(Options, EpsZeroIsAllowedOnlyWhereNoZeroDenominatorCanOccur) {
  Options o;
  o.eps = 0;
  o.initial_accumulator_value = 1;  // v ≥ (ρ^t)·1 > 0
  EXPECT_NO_THROW(o.validate());
  o.centered = true;  // v − m² can be 0
  EXPECT_THROW(o.validate(), InvalidOption);
}

TEST(Options, SetParsesTextAndRefusesWhatItCannotRead) {
  Options o;
  o.set("weight-decay", "0.5");
  EXPECT_EQ(o.weight_decay, 0.5);
  o.set("centered", "true");
  EXPECT_TRUE(o.centered);
  o.set("centered", "0");
  EXPECT_FALSE(o.centered);
  o.set("non_finite", "skip");
  EXPECT_EQ(o.non_finite, NonFinitePolicy::skip);
  o.set("algorithm", "adam");
  EXPECT_EQ(o.algorithm, Algorithm::adam);
  EXPECT_EQ(error_of([&] { o.set("learning_rate", "1"); }), "unknown option 'learning_rate'");
  EXPECT_EQ(error_of([&] { o.set("lr", "fast"); }), "invalid value for lr: 'fast' is not a number");
  EXPECT_EQ(error_of([&] { o.set("lr", "0.1x"); }), "invalid value for lr: '0.1x' is not a number");
  EXPECT_EQ(error_of([&] { o.set("centered", "maybe"); }),
            "invalid value for centered: 'maybe' is not a boolean (true/false)");
  EXPECT_NE(error_of([&] { flavor_from_string("pytorch"); })
                .find("unknown flavor 'pytorch' (valid: torch, tf1, keras, optax, lasagne, caffe, "
                      "ensmallen, timm_tf, hinton)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { o.set("non_finite", "ignore"); }).find("valid: error, skip, propagate"),
            std::string::npos);
}

TEST(Options, TextRoundTripIsExact) {
  for (Flavor f : all_flavors()) {
    Options o = Options::from_flavor(f);
    o.lr = 0.1 / 3;  // not a short decimal
    o.momentum = 0.9;
    o.grad_avg_decay = 0.123456789012345678;
    o.non_finite = NonFinitePolicy::propagate;
    EXPECT_EQ(Options::from_pairs(o.to_pairs()), o) << to_string(f);
  }
  const Options adam = Options::adam(3e-4, 0.8, 0.95);
  EXPECT_EQ(Options::from_pairs(adam.to_pairs()), adam);
}

// A value of the option other than `o`'s, valid for its kind and range.
OptionValue another_value(const OptionInfo& info, const Options& o) {
  const OptionValue now = info.get(o);
  switch (info.kind) {
    case OptionKind::number:
    case OptionKind::optional_number: {
      const double x = std::holds_alternative<double>(now) ? std::get<double>(now) : 0.0;
      return x == 0.25 ? 0.5 : 0.25;  // valid for every range (decays included)
    }
    case OptionKind::boolean:
      return !std::get<bool>(now);
    case OptionKind::choice:
      for (std::string_view c : info.choices) {
        if (c != std::get<std::string>(now)) return std::string(c);
      }
  }
  ADD_FAILURE() << info.name << " has no other value";
  return now;
}

// The option table is the one list of options: every row reads and writes its own field, by
// its name, its flag's spelling and typed values, and nothing else.
TEST(OptionTable, EveryRowRoundTripsThroughTextAndTypedValues) {
  ASSERT_FALSE(option_table().empty());
  for (const OptionInfo& info : option_table()) {
    SCOPED_TRACE(std::string(info.name));
    EXPECT_EQ(&option_info(info.name), &info);
    EXPECT_EQ(&option_info(info.flag().substr(2)), &info);  // "--weight-decay" -> weight-decay
    EXPECT_FALSE(info.help.empty());
    EXPECT_EQ(info.kind == OptionKind::choice, !info.choices.empty());
    const Options base;
    Options changed = base;
    const OptionValue value = another_value(info, base);
    info.set(changed, value);
    EXPECT_EQ(info.get(changed), value);
    EXPECT_NE(changed, base) << "setting it changed no field";
    // only this row's field changed
    for (const OptionInfo& other : option_table()) {
      if (&other != &info) {
        EXPECT_EQ(other.get(changed), other.get(base)) << other.name;
      }
    }
    // text: set(name, to_text) and to_pairs give the same value back
    Options from_text = base;
    from_text.set(info.name, to_text(value));
    EXPECT_EQ(from_text, changed);
    bool listed = false;
    for (const auto& [name, text] : changed.to_pairs()) {
      if (name != info.name) continue;
      listed = true;
      EXPECT_EQ(text, to_text(value));
    }
    EXPECT_TRUE(listed);
    // a value of another kind is refused, naming the option
    const OptionValue wrong =
        info.kind == OptionKind::boolean ? OptionValue(0.5) : OptionValue(true);
    try {
      info.set(changed, wrong);
      ADD_FAILURE() << "a value of the wrong kind was accepted";
    } catch (const InvalidOption& e) {
      EXPECT_NE(std::string(e.what()).find(info.name), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(&option_info("rho"), &option_info("alpha"));
  EXPECT_EQ(error_of([] { option_info("learning_rate"); }), "unknown option 'learning_rate'");
}

TEST(OptionTable, RangesAreCheckedByValidate) {
  for (const OptionInfo& info : option_table()) {
    if (info.range == OptionRange::kAny) continue;
    SCOPED_TRACE(std::string(info.name));
    for (double bad : {-1.0, std::numeric_limits<double>::quiet_NaN(),
                       std::numeric_limits<double>::infinity()}) {
      Options o;
      info.set(o, bad);
      expect_error(o, std::string(info.name) + "=");
    }
  }
}

}  // namespace
}  // namespace rmsprop
