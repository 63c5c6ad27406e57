// The fused multi-tensor step kernel: step_block (step_block.hpp) for each block of a launch,
// and the table of its instantiations.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../kernels/apply.hpp"
#include "launch.hpp"
#include "step_block.hpp"
#include "step_table.cuh"

namespace rmsprop::cuda::detail {

template <std::size_t kVariant, std::size_t kPrecision>
__global__ void __launch_bounds__(kBlockThreads)
    step_kernel(const __grid_constant__ StepLaunch launch) {
  step_block<kernels::variant_at(kVariant), kernels::precision_at(kPrecision)>(
      launch, blockIdx.x, threadIdx.x, blockDim.x);
}

template <std::size_t kVariant, std::size_t kPrecision>
void launch_step(const StepLaunch& launch, int blocks, cudaStream_t stream) {
  step_kernel<kVariant, kPrecision><<<blocks, kBlockThreads, 0, stream>>>(launch);
}

template <std::size_t kPrecision, std::size_t kVariant>
constexpr LaunchFn launcher() {
  constexpr Precision kP = kernels::precision_at(kPrecision);
  // 8-bit state has no device kernel yet (refused in check_tasks)
  if constexpr (kP.param == DType(RMSPROP_CUDA_PARAM) && kP.supported() &&
                kP.state != DType::i8_block && kernels::is_canonical(kVariant)) {
    return &launch_step<kVariant, kPrecision>;
  } else {
    return nullptr;
  }
}

template <std::size_t kPrecision, std::size_t... kVariant>
constexpr std::array<LaunchFn, kernels::kNumVariantIndices> launch_row(
    std::index_sequence<kVariant...>) {
  return {launcher<kPrecision, kVariant>()...};
}

// The launchers of every canonical variant for the precisions whose parameters are kParam
// (null elsewhere): one translation unit per parameter type, so they compile in parallel.
template <DType kParam, std::size_t... kPrecision>
constexpr LaunchTable launch_table_part(std::index_sequence<kPrecision...>) {
  return {(kernels::precision_at(kPrecision).param == kParam
               ? launch_row<kPrecision>(std::make_index_sequence<kernels::kNumVariantIndices>{})
               : std::array<LaunchFn, kernels::kNumVariantIndices>{})...};
}

}  // namespace rmsprop::cuda::detail
