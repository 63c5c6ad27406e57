// The optimizer object: groups, step counts, skipped parameters, non-finite policies,
// schedules, option changes mid-run, bad buffers.
#include "rmsprop/optimizer.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <complex>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <vector>

#include "rmsprop/error.hpp"

namespace rmsprop {
namespace {

// Everything the optimizer holds, as its checkpoint bytes: equal bytes, equal state.
std::string snapshot(const Optimizer& opt) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("rmsprop_snapshot_" + std::to_string(::getpid()) + ".ckpt");
  opt.save(path);
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(path);
  return bytes;
}

TEST(Optimizer, GroupsUseTheirOwnOptions) {
  std::vector<double> a = {1, 2}, ga = {0.5, -0.5}, b = {1, 2}, gb = {0.5, -0.5};
  Options fast, slow;
  fast.lr = 0.1, slow.lr = 0.001, slow.momentum = 0.9;
  Optimizer opt({ParamGroup{{Param::of(a, ga)}, fast}, ParamGroup{{Param::of(b, gb)}, slow}});
  opt.step();
  // The same as two optimizers, one per group.
  std::vector<double> a2 = {1, 2}, b2 = {1, 2};
  Optimizer one({Param::of(a2, ga)}, fast), two({Param::of(b2, gb)}, slow);
  one.step();
  two.step();
  EXPECT_EQ(a, a2);
  EXPECT_EQ(b, b2);
  EXPECT_NE(a, b);
  EXPECT_EQ(opt.num_groups(), 2u);
  EXPECT_TRUE(opt.momentum_buffer<double>(0, 0).empty());
  EXPECT_EQ(opt.momentum_buffer<double>(1, 0).size(), 2u);
}

TEST(Optimizer, AParameterWithoutGradientIsSkippedAndKeepsItsOwnStepCount) {
  std::vector<float> a = {1}, ga = {1}, b = {1}, gb = {1};
  Options o;
  o.bias_correction = true;  // per-parameter step counts enter the math
  Param pb = Param::of(b, gb);
  Optimizer opt({Param::of(a, ga), pb}, o);
  opt.step();
  opt.set_param(0, 1, Param{b.data(), nullptr, 1, DType::f32, false});  // no gradient this step
  const float b_before = b[0];
  const StepResult r = opt.step();
  EXPECT_EQ(r.updated, 1u);
  EXPECT_EQ(b[0], b_before);
  EXPECT_EQ(opt.step_count(0, 0), 2);
  EXPECT_EQ(opt.step_count(0, 1), 1);
  EXPECT_EQ(opt.steps_taken(), 2);
  // b's next step is its second: bias correction 1/(1−ρ²), not 1/(1−ρ³).
  opt.set_param(0, 1, pb);
  opt.step();
  EXPECT_EQ(opt.step_count(0, 1), 2);
  std::vector<float> c = {1}, gc = {1};
  Optimizer fresh({Param::of(c, gc)}, o);
  fresh.step();
  fresh.step();
  EXPECT_EQ(b[0], c[0]);
}

TEST(Optimizer, StateStartsAtTheFirstStepWithTheInitialAccumulator) {
  std::vector<double> w = {1, 2, 3}, g = {0, 0, 0};
  Optimizer opt({Param::of(w, g)}, Options::from_flavor(Flavor::tf1));
  EXPECT_TRUE(opt.square_avg<double>(0, 0).empty());
  opt.step();
  // v₀ = 1, then v = 1 + (0 − 1)·0.1 = 0.9
  for (double v : opt.square_avg<double>(0, 0)) EXPECT_DOUBLE_EQ(v, 0.9);
  EXPECT_THROW(opt.square_avg<float>(0, 0), InvalidArgument);  // wrong dtype asked
}

TEST(Optimizer, ZeroGradClearsEveryGradient) {
  std::vector<float> a = {1, 2}, ga = {3, 4};
  std::vector<double> b = {1}, gb = {5};
  Optimizer opt({Param::of(a, ga), Param::of(b, gb)}, Options{});
  opt.zero_grad();
  EXPECT_EQ(ga, (std::vector<float>{0, 0}));
  EXPECT_EQ(gb, (std::vector<double>{0}));
}

TEST(Optimizer, MixedDtypesInOneGroupMatchSeparateRuns) {
  std::vector<float> a = {0.5f, -1.5f}, ga = {0.25f, 1.0f};
  std::vector<double> b = {0.5, -1.5}, gb = {0.25, 1.0};
  Options o;
  o.momentum = 0.9, o.centered = true;
  Optimizer opt({Param::of(a, ga), Param::of(b, gb)}, o);
  std::vector<float> a2 = a;
  Optimizer alone({Param::of(a2, ga)}, o);
  for (int t = 0; t < 5; ++t) opt.step(), alone.step();
  EXPECT_EQ(a, a2);
  EXPECT_NEAR(b[0], a[0], 1e-6);
}

TEST(Optimizer, NonFiniteErrorThrowsNamesTheElementAndChangesNothing) {
  std::vector<double> a = {1, 2}, ga = {0.1, 0.2}, b = {3, 4, 5}, gb = {1, 1, 1};
  Optimizer opt({Param::of(a, ga), Param::of(b, gb)}, Options{});
  opt.step();
  const std::string before = snapshot(opt);
  const auto a0 = a, b0 = b;
  gb[2] = std::numeric_limits<double>::quiet_NaN();
  try {
    opt.step();
    FAIL() << "no error";
  } catch (const NonFiniteError& e) {
    EXPECT_STREQ(e.what(),
                 "non-finite gradient in group 0, parameter 1 at element 2: nan "
                 "(policy non_finite=error: nothing was changed)");
  }
  EXPECT_EQ(a, a0);
  EXPECT_EQ(b, b0);
  EXPECT_EQ(snapshot(opt), before);
  gb[2] = -std::numeric_limits<double>::infinity();
  EXPECT_THROW(opt.step(), NonFiniteError);
}

TEST(Optimizer, NonFiniteSkipSkipsTheWholeStep) {
  std::vector<float> a = {1}, ga = {0.1f}, b = {3}, gb = {std::numeric_limits<float>::infinity()};
  Options o;
  o.non_finite = NonFinitePolicy::skip;
  Optimizer opt({Param::of(a, ga), Param::of(b, gb)}, o);
  const std::string before = snapshot(opt);
  const StepResult r = opt.step();
  EXPECT_FALSE(r.applied);
  EXPECT_EQ(r.non_finite, 1u);
  EXPECT_EQ(a[0], 1);  // the finite parameter did not move either
  EXPECT_EQ(opt.steps_taken(), 0);
  EXPECT_EQ(snapshot(opt), before);
  gb[0] = 1;
  EXPECT_TRUE(opt.step().applied);
  EXPECT_EQ(opt.steps_taken(), 1);
}

TEST(Optimizer, NonFinitePropagateAppliesTheStep) {
  std::vector<float> a = {1, 2}, ga = {std::numeric_limits<float>::quiet_NaN(), 1};
  Options o;
  o.non_finite = NonFinitePolicy::propagate;
  Optimizer opt({Param::of(a, ga)}, o);
  EXPECT_TRUE(opt.step().applied);
  EXPECT_TRUE(std::isnan(a[0]));
  EXPECT_TRUE(std::isfinite(a[1]));
}

TEST(Optimizer, TheScheduleSetsEachStepsLearningRate) {
  std::vector<double> w = {0}, g = {1};
  Optimizer opt({Param::of(w, g)}, Options::sgd(1.0));
  opt.set_schedule(Schedule::step(2, 0.5));
  std::vector<double> steps;
  for (int t = 0; t < 6; ++t) {
    const double before = w[0];
    EXPECT_EQ(opt.current_lr(0), std::pow(0.5, t / 2));
    opt.step();
    steps.push_back(before - w[0]);
  }
  EXPECT_EQ(steps, (std::vector<double>{1, 1, 0.5, 0.5, 0.25, 0.25}));
}

TEST(Optimizer, ABadScheduleValueIsAnErrorBeforeAnythingChanges) {
  std::vector<double> w = {0}, g = {1};
  Optimizer opt({Param::of(w, g)}, Options{});
  opt.set_schedule(
      Schedule::custom([](double, std::int64_t t) { return t == 0 ? -1.0 : 0.1; }, "bad"));
  EXPECT_THROW(opt.step(), InvalidOption);
  EXPECT_EQ(w[0], 0);
  EXPECT_EQ(opt.steps_taken(), 0);
}

TEST(Optimizer, ChangingOptionsMidRunCreatesTheStateTheNewVariantNeeds) {
  std::vector<double> w = {1}, g = {0.5};
  Optimizer opt({Param::of(w, g)}, Options{});
  opt.step();
  EXPECT_TRUE(opt.momentum_buffer<double>(0, 0).empty());
  Options o = opt.options(0);
  o.momentum = 0.9, o.centered = true;
  opt.set_options(0, o);
  opt.step();
  EXPECT_EQ(opt.momentum_buffer<double>(0, 0).size(), 1u);
  EXPECT_EQ(opt.grad_avg<double>(0, 0).size(), 1u);
  Options bad = o;
  bad.lr = -1;
  EXPECT_THROW(opt.set_options(0, bad), InvalidOption);
  EXPECT_EQ(opt.options(0), o);
}

TEST(Optimizer, BadBuffersAreRefusedWithClearMessages) {
  std::vector<float> a = {1, 2}, ga = {1, 2}, short_grad = {1};
  EXPECT_THROW(Param::of(a, short_grad), InvalidArgument);
  try {
    Optimizer opt({Param::of(a, ga), Param::of(a, ga)}, Options{});
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_STREQ(e.what(),
                 "group 0, parameter 1: this buffer is already a parameter of the optimizer");
  }
  EXPECT_THROW(Optimizer({Param{nullptr, ga.data(), 2, DType::f32, false}}, Options{}),
               InvalidArgument);
  Options bad;
  bad.alpha = -2;
  EXPECT_THROW(Optimizer({Param::of(a, ga)}, bad), InvalidOption);
  Optimizer opt({Param::of(a, ga)}, Options{});
  std::vector<float> other(3), other_grad(3);
  EXPECT_THROW(opt.set_param(0, 0, Param::of(other, other_grad)), InvalidArgument);
  EXPECT_THROW(opt.set_param(0, 5, Param::of(a, ga)), InvalidArgument);
  EXPECT_THROW(opt.options(3), InvalidArgument);
}

TEST(Optimizer, EmptyParametersAndGroupsAreFine) {
  std::vector<float> none, none_grad;
  Optimizer opt({Param::of(none, none_grad)}, Options{});
  EXPECT_TRUE(opt.step().applied);  // an empty vector may have no data pointer at all
  Optimizer empty(std::vector<ParamGroup>{});
  EXPECT_TRUE(empty.step().applied);
}

}  // namespace
}  // namespace rmsprop

namespace rmsprop {
namespace {

// Complex parameters step as their real view: each real and imaginary part an element, as
// torch.optim steps them; the same bits as a real parameter holding those parts.
TEST(Optimizer, ComplexParametersStepAsTheirRealView) {
  std::vector<std::complex<double>> z = {{1.0, -2.0}, {0.5, 0.25}, {-3.0, 1.5}};
  std::vector<std::complex<double>> gz(3);
  std::vector<double> r(6), gr(6);
  for (std::size_t i = 0; i < 3; ++i) r[2 * i] = z[i].real(), r[2 * i + 1] = z[i].imag();
  Options o;
  o.momentum = 0.9, o.centered = true;
  Optimizer complex({Param::of(std::span(z), std::span(gz))}, o);
  Optimizer real({Param::of(std::span(r), std::span(gr))}, o);
  for (int s = 1; s <= 4; ++s) {
    for (std::size_t i = 0; i < 3; ++i) {
      gz[i] = {0.3 * s - double(i), 0.1 * double(i) + s};
      gr[2 * i] = gz[i].real(), gr[2 * i + 1] = gz[i].imag();
    }
    complex.step();
    real.step();
  }
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(z[i].real(), r[2 * i]);
    EXPECT_EQ(z[i].imag(), r[2 * i + 1]);
  }
  Options bf = o;
  bf.state_dtype = StateDType::bfloat16;
  std::vector<std::complex<float>> f(4), gf(4, {1.0f, 1.0f});
  Optimizer refused({Param::of(std::span(f), std::span(gf))}, bf);
  EXPECT_THROW(
      {
        try {
          refused.step();
        } catch (const InvalidArgument& e) {
          EXPECT_NE(std::string(e.what()).find("is complex"), std::string::npos) << e.what();
          throw;
        }
      },
      InvalidArgument);
}

}  // namespace
}  // namespace rmsprop
