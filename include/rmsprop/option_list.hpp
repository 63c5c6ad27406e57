// The option table: every hyper-parameter and storage knob of rmsprop::Options, once.
//
// Each row is X(type, name, default, range, keras_name, help). From these rows come the
// fields of Options (options.hpp), the run-time table option_table() (parsing, printing,
// range checks, the CLI's flags and --help, Python's keyword arguments and group keys), and
// the chained accessors of the libtorch RMSpropOptions. A new option is one row here (and, if
// it changes the math, one switch in the rule).
//
//   range:      kAny or kNonNegative (finite and >= 0); numbers only. Decays and momentum take
//               what torch.optim.RMSprop and timm take (>= 0; 1 and more too): validate()
//               refuses only what no framework can mean (bias correction with a decay of 1).
//   keras_name: the name Keras / TensorFlow give the same knob, "" where it has none or the
//               same one (torch.optim.RMSprop's names are ours).
#pragma once

// clang-format off
#define RMSPROP_OPTION_LIST(X)                                                                    \
  X(Algorithm, algorithm, Algorithm::rmsprop, kAny, "",                                           \
    "Which rule: rmsprop, adagrad, adam or sgd (the seeds' baselines share the rule)")            \
  X(double, lr, 1e-2, kNonNegative, "learning_rate", "Learning rate η")                           \
  X(double, alpha, 0.99, kNonNegative, "rho", "ρ: decay of the square average (Adam's beta2)")          \
  X(std::optional<double>, grad_avg_decay, std::nullopt, kNonNegative, "",                              \
    "Decay of the gradient average (centered m, Adam's beta1); unset: alpha")                     \
  X(double, eps, 1e-8, kNonNegative, "epsilon", "ε, added to the denominator")                    \
  X(bool, eps_in_sqrt, false, kAny, "", "true: d = sqrt(v + ε); false: d = sqrt(v) + ε")          \
  X(double, initial_accumulator_value, 0.0, kNonNegative, "",                                     \
    "Initial square average v₀ (1 for TF1 and timm RMSpropTF)")                                   \
  X(double, momentum, 0.0, kNonNegative, "", "Momentum μ")                                              \
  X(bool, nesterov, false, kAny, "", "Nesterov momentum: apply u + μ·b instead of b")             \
  X(bool, lr_in_momentum, false, kAny, "",                                                        \
    "true: b = μ·b + η·u, θ -= b (TF1); false: b = μ·b + u, θ -= η·b")                            \
  X(bool, centered, false, kAny, "", "Divide by the standard deviation: d from v − m²")           \
  X(bool, bias_correction, false, kAny, "",                                                       \
    "Correct the averages' start-up bias: v̂ = v/(1−ρ^t) (optax, Adam)")                           \
  X(double, weight_decay, 0.0, kNonNegative, "", "Weight decay λ")                                \
  X(bool, decoupled_weight_decay, false, kAny, "",                                                \
    "true: θ -= η·λ·θ before the step (AdamW style); false: g += λ·θ")                            \
  X(bool, weight_decay_uses_lr, true, kAny, "", "Decoupled decay only: false gives θ -= λ·θ")     \
  X(bool, maximize, false, kAny, "", "Ascend instead of descend: g = −g first")                   \
  X(NonFinitePolicy, non_finite, NonFinitePolicy::error, kAny, "",                                \
    "On a NaN or inf gradient: error (nothing changes), skip (the whole step) or propagate")      \
  X(StateDType, state_dtype, StateDType::float32, kAny, "",                                       \
    "Storage of square_avg, grad_avg, momentum_buffer: float32, bfloat16 or int8 (8-bit codes, "  \
    "a float32 scale per 256; float64 parameters keep float64)")                                  \
  X(double, state8_min_size, 4096.0, kNonNegative, "",                                            \
    "state_dtype=int8: tensors with fewer elements keep float32 state")                           \
  X(bool, master_weights, false, kAny, "",                                                        \
    "16-bit parameters: update a float32 copy, store its rounded image")                          \
  X(bool, stochastic_rounding, false, kAny, "",                                                   \
    "bfloat16 parameters: round their stored image stochastically")
// clang-format on
