// Helpers shared by the tests: a reproducible random stream and ulp distances.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "rmsprop/error.hpp"
#include "rmsprop/options.hpp"
#include "rmsprop/rule.hpp"

namespace rmsprop::testing {

// splitmix64, bit for bit the generator in tests/golden/generate.py.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // A double in [-1, 1) from 53 random bits (exact, as in the generator).
  double uniform() { return double(next() >> 11) * 0x1p-53 * 2.0 - 1.0; }

 private:
  std::uint64_t state_;
};

// Distance in units in the last place between two finite values of the same type: 0 when
// equal, 1 for neighbours. Works across zero.
template <class T>
std::uint64_t ulp_distance(T a, T b) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;
  if (std::isnan(a) || std::isnan(b)) {
    return std::isnan(a) && std::isnan(b) ? 0 : std::numeric_limits<std::uint64_t>::max();
  }
  auto ordered = [](T x) {
    Bits i = std::bit_cast<Bits>(x);
    return i < 0 ? std::numeric_limits<Bits>::min() - i : i;
  };
  Bits ia = ordered(a), ib = ordered(b);
  return ia > ib ? std::uint64_t(ia) - std::uint64_t(ib) : std::uint64_t(ib) - std::uint64_t(ia);
}

// Options whose variant is `v` (the inverse of variant_of on canonical variants), with
// non-trivial values for every scalar (bias correction, maximize and a large eps where the
// variant has a plain RMSProp denominator).
inline Options options_for(const Variant& v) {
  Options o;
  if (v.denominator == Denominator::none) o = Options::sgd(0.05);
  if (v.numerator == Numerator::grad_avg) o = Options::adam(0.01);
  o.centered = v.centered;
  o.eps_in_sqrt = v.eps_in_sqrt;
  if (v.momentum != MomentumKind::none) o.momentum = 0.9;
  o.nesterov = v.momentum == MomentumKind::nesterov;
  o.lr_in_momentum = v.lr_in_momentum;
  if (v.weight_decay != WeightDecay::none) o.weight_decay = 0.01;
  o.decoupled_weight_decay = v.weight_decay == WeightDecay::decoupled;
  if (v.denominator == Denominator::rms && v.numerator == Numerator::gradient) {
    o.bias_correction = true, o.maximize = true, o.eps = 1e-3;
  }
  return o;
}

// The message of the rmsprop::Error that f throws, or "(no error)".
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const rmsprop::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace rmsprop::testing
