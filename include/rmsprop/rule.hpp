// The update rule: the one place where the math of the RMSProp family is written.
//
// For one element, in this order (g: gradient, θ: parameter, v: square_avg, m: grad_avg,
// b: momentum_buffer; scalars from Coefficients, computed once per step on the host):
//
//   g  = s·g                                  s = −1 when maximizing (exact)
//   θ  = θ − κ·θ                              decoupled weight decay, κ = η·λ (or λ)
//   g  = g + λ·θ                              coupled weight decay
//   v  = ρ·v + ((1−ρ)·g)·g                    AdaGrad: ρ = 1, (1−ρ) → 1
//   m  = m + (1−ρ_m)·(g − m)                  when centered or Adam (the lerp form, as PyTorch)
//   v̂  = v·c_v,  m̂ = m·c_m                    c = 1/(1−ρ^t) with bias correction, else 1 (exact)
//   w  = max(v̂ − m̂², 0) when centered, else v̂
//   d  = sqrt(w + ε)  (eps_in_sqrt)  or  sqrt(w) + ε
//   u  = n/d                                  n = g, or m̂ for Adam; SGD: u = g, no v, no d
//   no momentum:         θ = θ − η·u
//   lr after momentum:   b = μ·b + u;     θ = θ − η·b       (Nesterov: θ = θ − η·(u + μ·b))
//   lr in momentum:      b = μ·b + η·u;   θ = θ − b         (Nesterov: θ = θ − (η·u + μ·b))
//
// Each framework's convention is a choice of these switches and scalars (docs/flavors.md).
//
// NOTE: [no fused multiply-add]
// The rule is written with separate multiplies and adds, and the library is compiled with
// -ffp-contract=off, so that the scalar reference, every SIMD target and the CUDA kernel
// round identically: sqrt and division are correctly rounded everywhere, so the same sequence
// of IEEE operations gives the same bits on every backend and thread count.
//
// NOTE: [baselines as variants]
// SGD, AdaGrad and Adam are the seeds' baselines. They share every piece of RMSProp but one:
// AdaGrad's accumulator does not decay (ρ = 1 and gain 1, host scalars), Adam's numerator is
// the bias-corrected EMA of g (a switch), SGD has no denominator (a switch). So they are
// variants of this rule, not copies of it.
#pragma once

#include <cstdint>

#include "rmsprop/options.hpp"
#include "rmsprop/portability.hpp"

namespace rmsprop {

enum class MomentumKind : std::uint8_t { none, heavy_ball, nesterov };
enum class Numerator : std::uint8_t { gradient, grad_avg };  // grad_avg: Adam
enum class Denominator : std::uint8_t { rms, none };         // none: SGD
enum class WeightDecay : std::uint8_t { none, coupled, decoupled };

// The switches that change which buffers the rule touches or the shape of its formula.
// They are compile-time inside kernels (template parameters): no branch in the hot loop.
struct Variant {
  bool centered = false;
  MomentumKind momentum = MomentumKind::none;
  bool lr_in_momentum = false;
  bool eps_in_sqrt = false;
  WeightDecay weight_decay = WeightDecay::none;
  Numerator numerator = Numerator::gradient;
  Denominator denominator = Denominator::rms;

  RMSPROP_HOST_DEVICE constexpr bool uses_square_avg() const {
    return denominator == Denominator::rms;
  }
  RMSPROP_HOST_DEVICE constexpr bool uses_grad_avg() const {
    return uses_square_avg() && (centered || numerator == Numerator::grad_avg);
  }
  RMSPROP_HOST_DEVICE constexpr bool uses_momentum_buffer() const {
    return momentum != MomentumKind::none;
  }
  constexpr bool operator==(const Variant&) const = default;
};

// The variant the options ask for.
Variant variant_of(const Options& options);

// Per-step scalars of the rule, already combined on the host (in double, then cast to T).
template <class T>
struct Coefficients {
  T lr{};              // η at this step (after the schedule)
  T grad_sign{};       // +1, or −1 to maximize
  T weight_decay{};    // coupled: λ; decoupled: η·λ (or λ without lr)
  T sq_decay{};        // ρ (1 for AdaGrad)
  T sq_gain{};         // 1 − ρ (1 for AdaGrad)
  T avg_gain{};        // 1 − ρ_m
  T sq_correction{};   // 1/(1 − ρ^t), or 1
  T avg_correction{};  // 1/(1 − ρ_m^t), or 1
  T eps{};
  T momentum{};  // μ

  template <class U>
  RMSPROP_HOST_DEVICE static Coefficients cast(const Coefficients<U>& c) {
    return {T(c.lr),       T(c.grad_sign),     T(c.weight_decay),   T(c.sq_decay), T(c.sq_gain),
            T(c.avg_gain), T(c.sq_correction), T(c.avg_correction), T(c.eps),      T(c.momentum)};
  }
};

// The options' scalars the coefficients are made of, as plain values: what a device needs to
// compute a step's coefficients itself from a step count and learning rate held in its own
// memory (CUDA's capturable steps), with the same arithmetic as the host.
struct CoefficientRecipe {
  double grad_sign = 1;
  double weight_decay = 0;
  bool weight_decay_times_lr = false;  // decoupled and weight_decay_uses_lr
  double sq_decay = 0, sq_gain = 0, avg_gain = 0;
  bool bias_correction = false;
  double sq_correction_base = 0, avg_correction_base = 0;  // ρ and ρ_m of 1/(1 − ρ^t)
  double eps = 0, momentum = 0;

  // The coefficients of step `step` (1 for the first step) at learning rate `lr`.
  RMSPROP_HOST_DEVICE Coefficients<double> at(std::int64_t step, double lr) const {
    Coefficients<double> c;
    c.lr = lr;
    c.grad_sign = grad_sign;
    c.weight_decay = weight_decay_times_lr ? lr * weight_decay : weight_decay;
    c.sq_decay = sq_decay;
    c.sq_gain = sq_gain;
    c.avg_gain = avg_gain;
    c.sq_correction = correction(sq_correction_base, step);
    c.avg_correction = correction(avg_correction_base, step);
    c.eps = eps;
    c.momentum = momentum;
    return c;
  }

 private:
  RMSPROP_HOST_DEVICE double correction(double decay, std::int64_t step) const {
    return bias_correction ? 1.0 / (1.0 - detail::pow(decay, double(step))) : 1.0;
  }
};

CoefficientRecipe coefficient_recipe(const Options& options);

// The coefficients of step `step` (1 for the first step) at learning rate `lr`.
inline Coefficients<double> coefficients(const Options& options, std::int64_t step, double lr) {
  return coefficient_recipe(options).at(step, lr);
}

// max(a, 0) as a select, not fmax: a select keeps the loops vectorizable (GCC does not
// vectorize fmaxf) and maps NaN to 0 only through the compare.
template <class V>
RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE V max0(V a) {
  return a > V(0) ? a : V(0);
}

// One element's values; the buffers a variant does not use are left untouched.
template <class V>
struct Element {
  V param;
  V grad;
  V square_avg;
  V grad_avg;
  V momentum_buffer;
  // sqrt(w), when the rule takes it (eps outside the sqrt): the 8-bit state's encoder stores
  // sqrt(v), and where w is v bit for bit it takes this one instead of a second square root
  // (NOTE: [8-bit encoder takes the rule's root] in src/kernels/apply.hpp). Unused elsewhere.
  V root;
};

// The rule for one element, in plain arithmetic on V (float, double): every kernel — the
// reference, the CPU loops that the compiler vectorizes, CUDA threads — instantiates this one
// function, so the operations and their order are the same everywhere (bitwise results).
template <Variant kV, class V>
RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE void update(Element<V>& e, const Coefficients<V>& c) {
  V g = e.grad * c.grad_sign;
  V theta = e.param;
  // θ − κ·θ, not θ·(1 − κ): 1 − κ rounded to float32 is off by up to 2^-24 relative, the same
  // way every step, and that drifts θ by ~100 ulps over 200 steps (measured against Keras).
  if constexpr (kV.weight_decay == WeightDecay::decoupled) theta = theta - c.weight_decay * theta;
  if constexpr (kV.weight_decay == WeightDecay::coupled) g = g + c.weight_decay * theta;

  V u = g;
  if constexpr (kV.uses_square_avg()) {
    e.square_avg = e.square_avg * c.sq_decay + (c.sq_gain * g) * g;
    V w = e.square_avg * c.sq_correction;
    V m_hat{};
    if constexpr (kV.uses_grad_avg()) {
      e.grad_avg = e.grad_avg + c.avg_gain * (g - e.grad_avg);
      m_hat = e.grad_avg * c.avg_correction;
    }
    if constexpr (kV.centered) w = max0(w - m_hat * m_hat);
    V d;
    if constexpr (kV.eps_in_sqrt) {
      d = detail::sqrt(w + c.eps);
    } else {
      e.root = detail::sqrt(w);
      d = e.root + c.eps;
    }
    u = (kV.numerator == Numerator::grad_avg ? m_hat : g) / d;
  }

  if constexpr (kV.momentum == MomentumKind::none) {
    e.param = theta - c.lr * u;
  } else if constexpr (kV.lr_in_momentum) {
    V lr_u = c.lr * u;
    e.momentum_buffer = c.momentum * e.momentum_buffer + lr_u;
    V applied = kV.momentum == MomentumKind::nesterov ? lr_u + c.momentum * e.momentum_buffer
                                                      : e.momentum_buffer;
    e.param = theta - applied;
  } else {
    e.momentum_buffer = c.momentum * e.momentum_buffer + u;
    V applied = kV.momentum == MomentumKind::nesterov ? u + c.momentum * e.momentum_buffer
                                                      : e.momentum_buffer;
    e.param = theta - c.lr * applied;
  }
}

}  // namespace rmsprop
