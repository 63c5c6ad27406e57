// The step kernels' launchers, by [precision][variant] as the CPU kernels' tables.
#pragma once

#include <array>

#include "../kernels/apply.hpp"
#include "launch.hpp"

namespace rmsprop::cuda::detail {

using LaunchFn = void (*)(const StepLaunch& launch, int blocks, cudaStream_t stream);
using LaunchTable =
    std::array<std::array<LaunchFn, kernels::kNumVariantIndices>, kernels::kNumPrecisionIndices>;

// Rows for the precisions whose parameters are kParam (step_<param>.cu each define one).
template <DType kParam>
const LaunchTable& launch_table_part();

}  // namespace rmsprop::cuda::detail
