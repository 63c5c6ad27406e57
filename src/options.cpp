#include "rmsprop/options.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

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
constexpr std::array kStateDTypes = {StateDType::float32, StateDType::bfloat16, StateDType::int8};

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

void require_in_range(const OptionInfo& info, double value) {
  switch (info.range) {
    case OptionRange::kAny:
      return;
    case OptionRange::kNonNegative:
      return require(std::isfinite(value) && value >= 0, info.name, value,
                     "must be finite and >= 0");
  }
}

void reject_flag(bool set, std::string_view field, std::string_view why) {
  if (set)
    throw InvalidOption("invalid option " + std::string(field) + "=true: " + std::string(why));
}

template <class Enum>
constexpr const auto& all_of();
template <>
constexpr const auto& all_of<Algorithm>() {
  return kAlgorithms;
}
template <>
constexpr const auto& all_of<NonFinitePolicy>() {
  return kPolicies;
}
template <>
constexpr const auto& all_of<StateDType>() {
  return kStateDTypes;
}

template <class Enum>
Enum from_name(std::string_view name);
template <>
Algorithm from_name(std::string_view name) {
  return algorithm_from_string(name);
}
template <>
NonFinitePolicy from_name(std::string_view name) {
  return non_finite_policy_from_string(name);
}
template <>
StateDType from_name(std::string_view name) {
  return state_dtype_from_string(name);
}

std::string join(std::span<const std::string_view> names) {
  std::string out;
  for (std::string_view n : names) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}

// A value for a message: 0.5, true, 'text' or unset.
std::string describe(const OptionValue& v) {
  if (const std::string* text = std::get_if<std::string>(&v)) return "'" + *text + "'";
  if (std::holds_alternative<std::monostate>(v)) return "unset";
  return to_text(v);
}

// NOTE: [option table] The run-time rows are generated from option_list.hpp: each row's
// type picks how its value is read and written (OptionTraits), and the member pointer gives
// the field. Nothing here lists an option by name.
template <class T>
struct OptionTraits;

template <>
struct OptionTraits<double> {
  static constexpr OptionKind kind = OptionKind::number;
  static OptionValue get(double x) { return x; }
  static double take(std::string_view name, const OptionValue& v) {
    if (const double* x = std::get_if<double>(&v)) return *x;
    throw InvalidOption("invalid value for " + std::string(name) + ": expected a number, got " +
                        describe(v));
  }
  static std::span<const std::string_view> choices() { return {}; }
};

template <>
struct OptionTraits<std::optional<double>> {
  static constexpr OptionKind kind = OptionKind::optional_number;
  static OptionValue get(const std::optional<double>& x) {
    return x ? OptionValue(*x) : OptionValue();
  }
  static std::optional<double> take(std::string_view name, const OptionValue& v) {
    if (std::holds_alternative<std::monostate>(v)) return std::nullopt;
    return OptionTraits<double>::take(name, v);
  }
  static std::span<const std::string_view> choices() { return {}; }
};

template <>
struct OptionTraits<bool> {
  static constexpr OptionKind kind = OptionKind::boolean;
  static OptionValue get(bool x) { return x; }
  static bool take(std::string_view name, const OptionValue& v) {
    if (const bool* x = std::get_if<bool>(&v)) return *x;
    throw InvalidOption("invalid value for " + std::string(name) +
                        ": expected true or false, got " + describe(v));
  }
  static std::span<const std::string_view> choices() { return {}; }
};

template <class Enum>
requires std::is_enum_v<Enum>
struct OptionTraits<Enum> {
  static constexpr OptionKind kind = OptionKind::choice;
  static OptionValue get(Enum x) { return std::string(to_string(x)); }
  static Enum take(std::string_view name, const OptionValue& v) {
    if (const std::string* x = std::get_if<std::string>(&v)) return from_name<Enum>(*x);
    throw InvalidOption("invalid value for " + std::string(name) + ": expected one of " +
                        join(choices()) + ", got " + describe(v));
  }
  static std::span<const std::string_view> choices() {
    static const auto names = [] {
      std::array<std::string_view, all_of<Enum>().size()> out{};
      for (std::size_t i = 0; i < out.size(); ++i) out[i] = to_string(all_of<Enum>()[i]);
      return out;
    }();
    return names;
  }
};

template <class T, auto Member>
OptionInfo row(std::string_view name, OptionRange range, std::string_view keras_name,
               std::string_view help) {
  using Traits = OptionTraits<T>;
  return {name,
          Traits::kind,
          range,
          keras_name,
          help,
          Traits::choices(),
          [](const Options& o) { return Traits::get(o.*Member); },
          [](Options& o, const OptionValue& v, std::string_view name) {
            o.*Member = Traits::take(name, v);
          }};
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
  switch (dtype) {
    case StateDType::bfloat16:
      return "bfloat16";
    case StateDType::int8:
      return "int8";
    case StateDType::float32:
      break;
  }
  return "float32";
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

namespace {

// see NOTE: [option table]
const std::vector<OptionInfo>& table() {
  static const std::vector<OptionInfo> rows = {
#define RMSPROP_OPTION_ROW(type, name, init, range, keras_name, help) \
  row<type, &Options::name>(#name, OptionRange::range, keras_name, help),
      RMSPROP_OPTION_LIST(RMSPROP_OPTION_ROW)
#undef RMSPROP_OPTION_ROW
  };
  return rows;
}

constexpr std::pair<std::string_view, std::string_view> kAliases[] = {{"rho", "alpha"}};

}  // namespace

std::span<const OptionInfo> option_table() {
  return table();
}

std::span<const std::pair<std::string_view, std::string_view>> option_aliases() {
  return kAliases;
}

const OptionInfo& option_info(std::string_view raw_name) {
  std::string name(raw_name);
  std::replace(name.begin(), name.end(), '-', '_');
  for (const auto& [alias, target] : kAliases) {
    if (alias == name) name = target;
  }
  for (const OptionInfo& info : table()) {
    if (info.name == name) return info;
  }
  throw InvalidOption("unknown option '" + std::string(raw_name) + "'");
}

std::string to_text(const OptionValue& value) {
  if (const double* x = std::get_if<double>(&value)) return format_double(*x);
  if (const bool* b = std::get_if<bool>(&value)) return *b ? "true" : "false";
  if (const std::string* text = std::get_if<std::string>(&value)) return *text;
  return "";
}

std::string option_flag(std::string_view name) {
  std::string out = "--" + std::string(name);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

std::string OptionInfo::flag() const {
  return option_flag(name);
}

OptionValue OptionInfo::parse(std::string_view text) const {
  switch (kind) {
    case OptionKind::number:
    case OptionKind::optional_number:
      return parse_double(name, text);
    case OptionKind::boolean:
      return parse_bool(name, text);
    case OptionKind::choice:
      break;
  }
  return std::string(text);
}

// The presets, read from each framework's source (docs/flavors.md gives each formula); where a
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
  for (const OptionInfo& info : option_table()) {
    const OptionValue value = info.get(*this);
    if (const double* x = std::get_if<double>(&value)) require_in_range(info, *x);
  }
  reject_flag(nesterov && momentum == 0, "nesterov", "Nesterov needs momentum > 0");
  reject_flag(!weight_decay_uses_lr && !decoupled_weight_decay, "weight_decay_uses_lr=false",
              "only decoupled weight decay can skip the learning rate; set decoupled_weight_decay");
  if (decoupled_weight_decay) {
    double shrink = weight_decay_uses_lr ? lr * weight_decay : weight_decay;
    require(shrink < 1, "weight_decay", weight_decay,
            "decoupled decay must shrink the parameter by less than 100% per step "
            "(lr*weight_decay, or weight_decay without lr, must be < 1)");
  }
  // Decays of 1 or more are taken (torch and timm check only >= 0), but not where they divide
  // by zero: the bias correction 1/(1 − ρ^t).
  if (bias_correction && algorithm != Algorithm::sgd && algorithm != Algorithm::adagrad) {
    require(alpha < 1, "alpha", alpha, "bias_correction divides by 1 - alpha^t: needs alpha < 1");
    const bool uses_average = centered || algorithm == Algorithm::adam;
    if (uses_average && grad_avg_decay) {
      require(*grad_avg_decay < 1, "grad_avg_decay", *grad_avg_decay,
              "bias_correction divides by 1 - grad_avg_decay^t: needs grad_avg_decay < 1");
    }
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

void Options::set(std::string_view name, std::string_view value) {
  const OptionInfo& info = option_info(name);
  info.set(*this, info.parse(value));
}

std::vector<std::pair<std::string, std::string>> Options::to_pairs() const {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const OptionInfo& info : option_table()) {
    const OptionValue value = info.get(*this);
    if (!std::holds_alternative<std::monostate>(value))
      pairs.emplace_back(std::string(info.name), to_text(value));
  }
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
