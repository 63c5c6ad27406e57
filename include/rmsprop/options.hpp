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
#include <vector>

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
enum class StateDType : std::uint8_t { float32, bfloat16 };

struct Options {
  Algorithm algorithm = Algorithm::rmsprop;
  double lr = 1e-2;     // η
  double alpha = 0.99;  // ρ: decay of the square average (beta2 for Adam)
  std::optional<double>
      grad_avg_decay;        // decay of grad_avg (centered m, Adam's beta1); unset: alpha
  double eps = 1e-8;         // ε
  bool eps_in_sqrt = false;  // d = sqrt(v + ε) instead of sqrt(v) + ε
  double initial_accumulator_value = 0;  // v₀ (1 for TF1 and timm RMSpropTF)
  double momentum = 0;                   // μ
  bool nesterov = false;                 // apply u + μ·b instead of b
  bool lr_in_momentum = false;   // b = μ·b + η·u; θ -= b   (else b = μ·b + u; θ -= η·b)
  bool centered = false;         // divide by the standard deviation: d from v − m²
  bool bias_correction = false;  // v̂ = v/(1−ρ^t), and m̂ = m/(1−ρ_m^t) where m is used
  double weight_decay = 0;       // λ
  bool decoupled_weight_decay = false;  // θ -= η·λ·θ before the step (else g += λ·θ)
  bool weight_decay_uses_lr = true;     // decoupled only: false gives θ -= λ·θ
  bool maximize = false;                // ascend: g = −g first
  NonFinitePolicy non_finite = NonFinitePolicy::error;
  // Storage (docs/precision.md). These change how values are kept, not the math:
  StateDType state_dtype = StateDType::float32;  // bfloat16 halves the state's memory
  bool master_weights = false;       // bf16/fp16 parameters: update a float32 copy, store its image
  bool stochastic_rounding = false;  // bf16 parameters: round their stored image stochastically

  // The preset of a framework's RMSprop: its defaults and conventions.
  static Options from_flavor(Flavor flavor);

  // The seeds' baselines with the same pieces: SGD (optionally with momentum), AdaGrad, Adam.
  static Options sgd(double lr, double momentum = 0);
  static Options adagrad(double lr = 1e-2, double eps = 1e-10);
  static Options adam(double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
                      bool bias_correction = true);

  double effective_grad_avg_decay() const { return grad_avg_decay.value_or(alpha); }

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

}  // namespace rmsprop
