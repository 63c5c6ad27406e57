#include "rmsprop/options.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <string>
#include <utility>

#include "rmsprop/error.hpp"
#include "text.hpp"

namespace rmsprop {
namespace {

constexpr std::array kFlavors = {Flavor::torch,     Flavor::tf1,     Flavor::keras,
                                 Flavor::optax,     Flavor::lasagne, Flavor::caffe,
                                 Flavor::ensmallen, Flavor::timm_tf, Flavor::hinton};
constexpr std::array kAlgorithms = {Algorithm::rmsprop, Algorithm::adagrad, Algorithm::adam,
                                    Algorithm::sgd};
constexpr std::array kPolicies = {NonFinitePolicy::error, NonFinitePolicy::skip,
                                  NonFinitePolicy::propagate};
constexpr std::array kStateDTypes = {StateDType::float32, StateDType::bfloat16};

template <class Enum, std::size_t N>
Enum enum_from_string(std::string_view name, const std::array<Enum, N>& all, const char* what) {
  for (Enum e : all) {
    if (to_string(e) == name) return e;
  }
  std::string valid;
  for (Enum e : all) valid += (valid.empty() ? "" : ", ") + std::string(to_string(e));
  throw InvalidOption(std::string("unknown ") + what + " '" + std::string(name) +
                      "' (valid: " + valid + ")");
}

void require(bool ok, std::string_view field, double value, std::string_view rule) {
  if (!ok) {
    throw InvalidOption("invalid option " + std::string(field) + "=" + format_double(value) + ": " +
                        std::string(rule));
  }
}

void require_decay(std::string_view field, double value) {
  require(std::isfinite(value) && value >= 0 && value < 1, field, value, "must be in [0, 1)");
}

void require_non_negative(std::string_view field, double value) {
  require(std::isfinite(value) && value >= 0, field, value, "must be finite and >= 0");
}

void reject_flag(bool set, std::string_view field, std::string_view why) {
  if (set)
    throw InvalidOption("invalid option " + std::string(field) + "=true: " + std::string(why));
}

}  // namespace

std::string_view to_string(Flavor flavor) {
  switch (flavor) {
    case Flavor::torch:
      return "torch";
    case Flavor::tf1:
      return "tf1";
    case Flavor::keras:
      return "keras";
    case Flavor::optax:
      return "optax";
    case Flavor::lasagne:
      return "lasagne";
    case Flavor::caffe:
      return "caffe";
    case Flavor::ensmallen:
      return "ensmallen";
    case Flavor::timm_tf:
      return "timm_tf";
    case Flavor::hinton:
      return "hinton";
  }
  return "?";
}

std::string_view to_string(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::rmsprop:
      return "rmsprop";
    case Algorithm::adagrad:
      return "adagrad";
    case Algorithm::adam:
      return "adam";
    case Algorithm::sgd:
      return "sgd";
  }
  return "?";
}

std::string_view to_string(NonFinitePolicy policy) {
  switch (policy) {
    case NonFinitePolicy::error:
      return "error";
    case NonFinitePolicy::skip:
      return "skip";
    case NonFinitePolicy::propagate:
      return "propagate";
  }
  return "?";
}

std::string_view to_string(StateDType dtype) {
  return dtype == StateDType::bfloat16 ? "bfloat16" : "float32";
}

StateDType state_dtype_from_string(std::string_view name) {
  return enum_from_string(name, kStateDTypes, "state_dtype");
}

Flavor flavor_from_string(std::string_view name) {
  return enum_from_string(name, kFlavors, "flavor");
}
Algorithm algorithm_from_string(std::string_view name) {
  return enum_from_string(name, kAlgorithms, "algorithm");
}
NonFinitePolicy non_finite_policy_from_string(std::string_view name) {
  return enum_from_string(name, kPolicies, "non_finite policy");
}
std::span<const Flavor> all_flavors() {
  return kFlavors;
}

// The presets. Each line cites SEMANTICS.md's reading of the framework's source; where a
// framework has no default learning rate (TF1, optax) we use Keras's 1e-3.
Options Options::from_flavor(Flavor flavor) {
  Options o;  // the defaults are torch.optim.RMSprop's
  switch (flavor) {
    case Flavor::torch:
      break;
    case Flavor::tf1:
      o.lr = 1e-3, o.alpha = 0.9, o.eps = 1e-10, o.eps_in_sqrt = true;
      o.initial_accumulator_value = 1, o.lr_in_momentum = true;
      break;
    case Flavor::keras:
      o.lr = 1e-3, o.alpha = 0.9, o.eps = 1e-7, o.eps_in_sqrt = true;
      o.lr_in_momentum = true, o.decoupled_weight_decay = true;
      break;
    case Flavor::optax:
      o.lr = 1e-3, o.alpha = 0.9, o.eps = 1e-8, o.eps_in_sqrt = true, o.lr_in_momentum = true;
      break;
    case Flavor::lasagne:
      o.lr = 1.0, o.alpha = 0.9, o.eps = 1e-6, o.eps_in_sqrt = true, o.lr_in_momentum = true;
      break;
    case Flavor::caffe:
      o.lr = 1e-2, o.alpha = 0.99, o.eps = 1e-8;
      break;
    case Flavor::ensmallen:
      o.lr = 1e-2, o.alpha = 0.99, o.eps = 1e-8;
      break;
    case Flavor::timm_tf:
      o.lr = 1e-2, o.alpha = 0.9, o.eps = 1e-10, o.eps_in_sqrt = true;
      o.initial_accumulator_value = 1, o.lr_in_momentum = true;
      break;
    case Flavor::hinton:
      // The lecture has no ε; a tiny one inside the sqrt keeps 0/0 away.
      o.lr = 1e-3, o.alpha = 0.9, o.eps = 1e-8, o.eps_in_sqrt = true;
      break;
  }
  return o;
}

Options Options::sgd(double lr, double momentum) {
  Options o;
  o.algorithm = Algorithm::sgd, o.lr = lr, o.momentum = momentum;
  return o;
}

Options Options::adagrad(double lr, double eps) {
  Options o;
  o.algorithm = Algorithm::adagrad, o.lr = lr, o.eps = eps;
  return o;
}

Options Options::adam(double lr, double beta1, double beta2, double eps, bool bias_correction) {
  Options o;
  o.algorithm = Algorithm::adam, o.lr = lr, o.alpha = beta2, o.grad_avg_decay = beta1;
  o.eps = eps, o.bias_correction = bias_correction;
  return o;
}

void Options::validate() const {
  require_non_negative("lr", lr);
  require_decay("alpha", alpha);
  if (grad_avg_decay) require_decay("grad_avg_decay", *grad_avg_decay);
  require_non_negative("eps", eps);
  require_non_negative("initial_accumulator_value", initial_accumulator_value);
  require_decay("momentum", momentum);
  require_non_negative("weight_decay", weight_decay);
  reject_flag(nesterov && momentum == 0, "nesterov", "Nesterov needs momentum > 0");
  reject_flag(!weight_decay_uses_lr && !decoupled_weight_decay, "weight_decay_uses_lr=false",
              "only decoupled weight decay can skip the learning rate; set decoupled_weight_decay");
  if (decoupled_weight_decay) {
    double shrink = weight_decay_uses_lr ? lr * weight_decay : weight_decay;
    require(shrink < 1, "weight_decay", weight_decay,
            "decoupled decay must shrink the parameter by less than 100% per step "
            "(lr*weight_decay, or weight_decay without lr, must be < 1)");
  }
  if (algorithm == Algorithm::sgd) {
    reject_flag(centered, "centered", "SGD has no denominator to center");
    reject_flag(bias_correction, "bias_correction", "SGD has no accumulator to correct");
    reject_flag(eps_in_sqrt, "eps_in_sqrt", "SGD has no denominator");
    return;
  }
  if (algorithm == Algorithm::adagrad) {
    reject_flag(centered, "centered", "AdaGrad's sum of squares has no mean to center");
    reject_flag(bias_correction, "bias_correction", "AdaGrad's sum does not decay");
  }
  if (algorithm == Algorithm::adam) reject_flag(centered, "centered", "not defined for Adam");
  // eps = 0 is Hinton's lecture; it divides 0 by 0 where g and v are both 0 unless v starts > 0.
  bool zero_denominator_possible = initial_accumulator_value == 0 || centered;
  require(eps > 0 || !zero_denominator_possible, "eps", eps,
          "eps = 0 divides 0 by 0 where a gradient and its accumulator are zero; use a tiny eps "
          "or initial_accumulator_value > 0 (not centered)");
}

void Options::set(std::string_view raw_name, std::string_view value) {
  std::string name(raw_name);
  for (char& c : name) c = c == '-' ? '_' : c;
  auto number = [&] { return parse_double(name, value); };
  auto flag = [&] { return parse_bool(name, value); };
  using Setter = void (*)(Options&, std::string_view, decltype(number)&, decltype(flag)&);
  struct Field {
    std::string_view name;
    Setter set;
  };
  static constexpr Field kFields[] = {
      {"algorithm",
       [](Options& o, auto v, auto&, auto&) { o.algorithm = algorithm_from_string(v); }},
      {"lr", [](Options& o, auto, auto& n, auto&) { o.lr = n(); }},
      {"alpha", [](Options& o, auto, auto& n, auto&) { o.alpha = n(); }},
      {"rho", [](Options& o, auto, auto& n, auto&) { o.alpha = n(); }},
      {"grad_avg_decay", [](Options& o, auto, auto& n, auto&) { o.grad_avg_decay = n(); }},
      {"eps", [](Options& o, auto, auto& n, auto&) { o.eps = n(); }},
      {"eps_in_sqrt", [](Options& o, auto, auto&, auto& f) { o.eps_in_sqrt = f(); }},
      {"initial_accumulator_value",
       [](Options& o, auto, auto& n, auto&) { o.initial_accumulator_value = n(); }},
      {"momentum", [](Options& o, auto, auto& n, auto&) { o.momentum = n(); }},
      {"nesterov", [](Options& o, auto, auto&, auto& f) { o.nesterov = f(); }},
      {"lr_in_momentum", [](Options& o, auto, auto&, auto& f) { o.lr_in_momentum = f(); }},
      {"centered", [](Options& o, auto, auto&, auto& f) { o.centered = f(); }},
      {"bias_correction", [](Options& o, auto, auto&, auto& f) { o.bias_correction = f(); }},
      {"weight_decay", [](Options& o, auto, auto& n, auto&) { o.weight_decay = n(); }},
      {"decoupled_weight_decay",
       [](Options& o, auto, auto&, auto& f) { o.decoupled_weight_decay = f(); }},
      {"weight_decay_uses_lr",
       [](Options& o, auto, auto&, auto& f) { o.weight_decay_uses_lr = f(); }},
      {"maximize", [](Options& o, auto, auto&, auto& f) { o.maximize = f(); }},
      {"non_finite",
       [](Options& o, auto v, auto&, auto&) { o.non_finite = non_finite_policy_from_string(v); }},
      {"state_dtype",
       [](Options& o, auto v, auto&, auto&) { o.state_dtype = state_dtype_from_string(v); }},
      {"master_weights", [](Options& o, auto, auto&, auto& f) { o.master_weights = f(); }},
      {"stochastic_rounding",
       [](Options& o, auto, auto&, auto& f) { o.stochastic_rounding = f(); }},
  };
  for (const Field& field : kFields) {
    if (field.name == name) return field.set(*this, value, number, flag);
  }
  throw InvalidOption("unknown option '" + std::string(raw_name) + "'");
}

std::vector<std::pair<std::string, std::string>> Options::to_pairs() const {
  auto b = [](bool x) { return std::string(x ? "true" : "false"); };
  std::vector<std::pair<std::string, std::string>> pairs = {
      {"algorithm", std::string(to_string(algorithm))},
      {"lr", format_double(lr)},
      {"alpha", format_double(alpha)},
      {"eps", format_double(eps)},
      {"eps_in_sqrt", b(eps_in_sqrt)},
      {"initial_accumulator_value", format_double(initial_accumulator_value)},
      {"momentum", format_double(momentum)},
      {"nesterov", b(nesterov)},
      {"lr_in_momentum", b(lr_in_momentum)},
      {"centered", b(centered)},
      {"bias_correction", b(bias_correction)},
      {"weight_decay", format_double(weight_decay)},
      {"decoupled_weight_decay", b(decoupled_weight_decay)},
      {"weight_decay_uses_lr", b(weight_decay_uses_lr)},
      {"maximize", b(maximize)},
      {"non_finite", std::string(to_string(non_finite))},
      {"state_dtype", std::string(to_string(state_dtype))},
      {"master_weights", b(master_weights)},
      {"stochastic_rounding", b(stochastic_rounding)},
  };
  if (grad_avg_decay) pairs.emplace_back("grad_avg_decay", format_double(*grad_avg_decay));
  return pairs;
}

Options Options::from_pairs(std::span<const std::pair<std::string, std::string>> pairs) {
  Options o;
  for (const auto& [name, value] : pairs) {
    if (name == "flavor") o = from_flavor(flavor_from_string(value));
  }
  for (const auto& [name, value] : pairs) {
    if (name != "flavor") o.set(name, value);
  }
  o.validate();
  return o;
}

}  // namespace rmsprop
