// The table of kernel instantiations: every canonical Variant, generated from one list of
// axes so that no list of variants is kept by hand (flags are compile-time: each variant is its own
// instantiation).
//
// A Variant is canonical when variant_of() can return it (e.g. SGD is never centered). Kernels
// are instantiated for canonical variants only (apply.hpp builds the tables); the tests walk
// the whole table.
#pragma once

#include <array>
#include <cstddef>
#include <utility>

#include "rmsprop/rule.hpp"

namespace rmsprop::kernels {

// Axis sizes, in the order of the index's mixed-radix digits.
inline constexpr std::size_t kNumVariantIndices = 2 * 3 * 2 * 2 * 3 * 2 * 2;

constexpr Variant variant_at(std::size_t index) {
  Variant v;
  v.centered = index % 2, index /= 2;
  v.momentum = MomentumKind(index % 3), index /= 3;
  v.lr_in_momentum = index % 2, index /= 2;
  v.eps_in_sqrt = index % 2, index /= 2;
  v.weight_decay = WeightDecay(index % 3), index /= 3;
  v.numerator = Numerator(index % 2), index /= 2;
  v.denominator = Denominator(index % 2);
  return v;
}

constexpr std::size_t index_of(const Variant& v) {
  std::size_t index = std::size_t(v.denominator);
  index = index * 2 + std::size_t(v.numerator);
  index = index * 3 + std::size_t(v.weight_decay);
  index = index * 2 + v.eps_in_sqrt;
  index = index * 2 + v.lr_in_momentum;
  index = index * 3 + std::size_t(v.momentum);
  index = index * 2 + v.centered;
  return index;
}

// The switches that matter for a variant; the others are normalized away (as variant_of does).
constexpr Variant canonical(Variant v) {
  if (v.denominator == Denominator::none) {
    v.centered = false, v.eps_in_sqrt = false, v.numerator = Numerator::gradient;
  }
  if (v.numerator == Numerator::grad_avg) v.centered = false;
  if (v.momentum == MomentumKind::none) v.lr_in_momentum = false;
  return v;
}

constexpr bool is_canonical(std::size_t index) {
  return canonical(variant_at(index)) == variant_at(index);
}

}  // namespace rmsprop::kernels
