// Hyper-parameters of the RMSProp family, the named framework flavors, and their validation.
//
// A flavor is only a preset of these fields (see docs/flavors.md): start from
// `Options::from_flavor(Flavor::tf1)` and change any field to override the flavor's default.
// Field names follow torch.optim.RMSprop where PyTorch has the knob; the CLI and Python use the
// same names (with '-' for '_' on the command line).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "rmsprop/option_list.hpp"

namespace rmsprop {

// Which optimizer the rule computes. RMSProp is the product; the others are the seeds'
// baselines, expressed with the same pieces (see NOTE: [baselines as variants] in rule.hpp).
enum class Algorithm : std::uint8_t {
  rmsprop,  // θ -= η·g/d with d from the EMA of g² (and of g when centered)
  adagrad,  // the accumulator sums g² instead of decaying it
  adam,     // numerator is the EMA of g (decay beta1) instead of g
  sgd,      // no denominator: θ -= η·g
};

enum class Flavor : std::uint8_t {
  torch,      // torch.optim.RMSprop
  tf1,        // TensorFlow 1 RMSPropOptimizer / ApplyRMSProp
  keras,      // Keras 3 keras.optimizers.RMSprop
  optax,      // optax.rmsprop
  lasagne,    // lasagne.updates.rmsprop
  caffe,      // Caffe RMSPropSolver
  ensmallen,  // ensmallen RMSProp
  timm_tf,    // timm RMSpropTF
  hinton,     // Hinton's lecture 6e
};

// What step() does when a gradient holds NaN or ±inf.
enum class NonFinitePolicy : std::uint8_t {
  error,      // throw NonFiniteError naming the tensor and element; nothing is changed
  skip,       // the whole optimizer skips this step; no parameter, state or step count changes
  propagate,  // apply the step anyway (what the frameworks do): NaN/inf flow into the state
};

// How the optimizer stores square_avg, grad_avg and momentum_buffer for float32 and 16-bit
// parameters (float64 parameters keep float64 state).
enum class StateDType : std::uint8_t { float32, bfloat16, int8 };

// The range check of a number option (see option_list.hpp).
enum class OptionRange : std::uint8_t {
  kAny,
  kNonNegative,  // finite and >= 0
};

struct Options {
  // The fields, one per row of option_list.hpp (the help text of each is there).
#define RMSPROP_OPTION_FIELD(type, name, init, range, keras_name, help) type name = init;
  RMSPROP_OPTION_LIST(RMSPROP_OPTION_FIELD)
#undef RMSPROP_OPTION_FIELD

  // The preset of a framework's RMSprop: its defaults and conventions.
  static Options from_flavor(Flavor flavor);

  // The seeds' baselines with the same pieces: SGD (optionally with momentum), AdaGrad, Adam.
  static Options sgd(double lr, double momentum = 0);
  static Options adagrad(double lr = 1e-2, double eps = 1e-10);
  static Options adam(double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
                      bool bias_correction = true);

  double effective_grad_avg_decay() const {
    return grad_avg_decay.value_or(alpha);
  }

  // Throws InvalidOption naming the field and its value when the options make no sense.
  void validate() const;

  // Sets one field from text, by its name (`lr`, `weight_decay`, `eps_in_sqrt`, `algorithm`...):
  // the one place that turns user strings into options, shared by the CLI, Python and tests.
  // Booleans accept true/false/1/0. Unknown names and unparsable values throw InvalidOption.
  void set(std::string_view name, std::string_view value);

  // Every field as (name, value) text pairs; `from_pairs(to_pairs())` gives the options back.
  std::vector<std::pair<std::string, std::string>> to_pairs() const;

  // Options from (name, value) pairs: a "flavor" pair, wherever it stands, picks the preset
  // first; every other pair then overrides one field. Validates the result.
  static Options from_pairs(std::span<const std::pair<std::string, std::string>> pairs);

  bool operator==(const Options&) const = default;
};

// Names as used everywhere (C++, CLI, Python): "torch", "tf1", ..., "timm_tf", "hinton".
std::string_view to_string(Flavor flavor);
std::string_view to_string(Algorithm algorithm);
std::string_view to_string(NonFinitePolicy policy);
std::string_view to_string(StateDType dtype);
Flavor flavor_from_string(std::string_view name);  // throws InvalidOption listing the valid names
Algorithm algorithm_from_string(std::string_view name);
NonFinitePolicy non_finite_policy_from_string(std::string_view name);
StateDType state_dtype_from_string(std::string_view name);
std::span<const Flavor> all_flavors();

// What kind of value an option holds.
enum class OptionKind : std::uint8_t {
  number,           // a double
  optional_number,  // a double, or unset
  boolean,
  choice,  // one of a fixed set of names (an enum)
};

// An option's value, typed: unset (an optional number left unset), a number, a bool, or the
// name of a choice.
using OptionValue = std::variant<std::monostate, double, bool, std::string>;

// One row of the option table (option_list.hpp) with what every front end needs of it.
struct OptionInfo {
  std::string_view name;        // the field's name, as C++, Python and checkpoints spell it
  OptionKind kind;              //
  OptionRange range;            // numbers: the check validate() applies
  std::string_view keras_name;  // Keras/TF's name for it, or ""
  std::string_view help;        // one line for --help and docs
  std::span<const std::string_view> choices;  // choice: the valid names
  OptionValue (*getter)(const Options&);
  void (*setter)(Options&, const OptionValue&, std::string_view name);

  OptionValue get(const Options& options) const { return getter(options); }
  // Sets the field; throws InvalidOption naming the option when the value has another kind
  // (a number for a bool, an unknown choice...). Ranges are checked by Options::validate.
  void set(Options& options, const OptionValue& value) const { setter(options, value, name); }

  std::string flag() const;  // the CLI flag: "weight_decay" -> "--weight-decay"
  // The value read from text (numbers, true/false/1/0/yes/no/on/off, choice names).
  OptionValue parse(std::string_view text) const;
};

// The option table, in option_list.hpp's order.
std::span<const OptionInfo> option_table();
// The row of an option by its name, its alias ("rho" for alpha) or its name with dashes
// ("weight-decay"); throws InvalidOption("unknown option '...'") otherwise.
const OptionInfo& option_info(std::string_view name);
// Other names accepted for an option: (alias, option name) pairs.
std::span<const std::pair<std::string_view, std::string_view>> option_aliases();
// The command-line flag of an option (or alias) name: "weight_decay" -> "--weight-decay".
std::string option_flag(std::string_view name);
// A value as Options::to_pairs writes it: "0.01", "true", "skip"; "" when unset.
std::string to_text(const OptionValue& value);

}  // namespace rmsprop
