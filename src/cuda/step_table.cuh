// The step kernels' launchers, by [precision][variant] as the CPU kernels' tables.
#pragma once

#include <array>

#include "../kernels/apply.hpp"
#include "launch.hpp"

namespace rmsprop::cuda::detail {

using LaunchFn = void (*)(const StepLaunch& launch, int blocks, cudaStream_t stream);
using LaunchTable =
    std::array<std::array<LaunchFn, kernels::kNumVariantIndices>, kernels::kNumPrecisionIndices>;

// Rows for the precisions whose parameters are kParam: step_instances.cu, compiled once per
// parameter dtype (RMSPROP_CUDA_PARAM), defines one each.
template <DType kParam>
const LaunchTable& launch_table_part();

}  // namespace rmsprop::cuda::detail
