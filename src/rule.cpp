#include "rmsprop/rule.hpp"

namespace rmsprop {

Variant variant_of(const Options& o) {
  Variant v;
  v.denominator = o.algorithm == Algorithm::sgd ? Denominator::none : Denominator::rms;
  bool rms = v.denominator == Denominator::rms;
  v.numerator = o.algorithm == Algorithm::adam ? Numerator::grad_avg : Numerator::gradient;
  v.centered = rms && o.centered;
  v.eps_in_sqrt = rms && o.eps_in_sqrt;
  if (o.momentum > 0) v.momentum = o.nesterov ? MomentumKind::nesterov : MomentumKind::heavy_ball;
  v.lr_in_momentum = v.momentum != MomentumKind::none && o.lr_in_momentum;
  if (o.weight_decay != 0) {
    v.weight_decay = o.decoupled_weight_decay ? WeightDecay::decoupled : WeightDecay::coupled;
  }
  return v;
}

CoefficientRecipe coefficient_recipe(const Options& o) {
  const bool sums = o.algorithm == Algorithm::adagrad;
  CoefficientRecipe r;
  r.grad_sign = o.maximize ? -1.0 : 1.0;
  r.weight_decay = o.weight_decay;
  r.weight_decay_times_lr = o.decoupled_weight_decay && o.weight_decay_uses_lr;
  r.sq_decay = sums ? 1.0 : o.alpha;
  r.sq_gain = sums ? 1.0 : 1.0 - o.alpha;
  r.avg_gain = 1.0 - o.effective_grad_avg_decay();
  r.bias_correction = o.bias_correction;
  r.sq_correction_base = o.alpha;
  r.avg_correction_base = o.effective_grad_avg_decay();
  r.eps = o.eps;
  r.momentum = o.momentum;
  return r;
}

}  // namespace rmsprop
