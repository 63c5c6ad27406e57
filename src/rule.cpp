#include "rmsprop/rule.hpp"

#include <cmath>

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

Coefficients<double> coefficients(const Options& o, std::int64_t step, double lr) {
  const bool sums = o.algorithm == Algorithm::adagrad;
  const double avg_decay = o.effective_grad_avg_decay();
  auto correction = [&](double decay) {
    return o.bias_correction ? 1.0 / (1.0 - std::pow(decay, double(step))) : 1.0;
  };
  Coefficients<double> c;
  c.lr = lr;
  c.grad_sign = o.maximize ? -1.0 : 1.0;
  c.weight_decay = o.weight_decay;
  if (o.decoupled_weight_decay && o.weight_decay_uses_lr) c.weight_decay = lr * o.weight_decay;
  c.sq_decay = sums ? 1.0 : o.alpha;
  c.sq_gain = sums ? 1.0 : 1.0 - o.alpha;
  c.avg_gain = 1.0 - avg_decay;
  c.sq_correction = correction(o.alpha);
  c.avg_correction = correction(avg_decay);
  c.eps = o.eps;
  c.momentum = o.momentum;
  return c;
}

}  // namespace rmsprop
