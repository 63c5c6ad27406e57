// What each SIMD target's translation unit provides: a table of range kernels per dtype.
#pragma once

#include <array>
#include <cstddef>

#include "rmsprop/kernel.hpp"
#include "variant_table.hpp"

namespace rmsprop::kernels {

// Applies the rule to elements [begin, end) of one tensor.
using RangeFn = void (*)(const TensorTask& task, std::size_t begin, std::size_t end);

struct FusedTables {
  std::array<RangeFn, kNumVariantIndices> f32;
  std::array<RangeFn, kNumVariantIndices> f64;
};

// One namespace per target, each compiled with its own -m flags (fused_<target>.cpp).
namespace avx512 {
const FusedTables& tables();
}
namespace avx2 {
const FusedTables& tables();
}
namespace baseline {
const FusedTables& tables();
}

}  // namespace rmsprop::kernels
