// What each SIMD target's translation unit provides: range kernels by [precision][variant].
#pragma once

#include <array>
#include <cstddef>

#include "apply.hpp"
#include "rmsprop/kernel.hpp"

namespace rmsprop::kernels {

// Applies the rule to elements [begin, end) of one tensor.
using RangeFn = void (*)(const TensorTask& task, std::size_t begin, std::size_t end);

using FusedTable = std::array<std::array<RangeFn, kNumVariantIndices>, kNumPrecisionIndices>;

// How the fused 8-bit-state loop is scheduled on this CPU (NOTE: [8-bit schedule by CPU],
// fused.cpp).
const State8Schedule& state8_schedule();

// One namespace per target, each compiled with its own -m flags (fused_<target>.cpp).
namespace avx512 {
const FusedTable& table();
}
namespace avx2 {
const FusedTable& table();
}
namespace baseline {
const FusedTable& table();
}

}  // namespace rmsprop::kernels
