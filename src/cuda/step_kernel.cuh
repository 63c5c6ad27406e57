// The fused multi-tensor step kernel: step_block (step_block.hpp) for each block of a launch,
// and the table of its instantiations.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../kernels/apply.hpp"
#include "launch.hpp"
#include "state8_block.hpp"
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

// 8-bit state: each warp steps whole 8-bit blocks (NOTE: [8-bit state on CUDA]).
template <std::size_t kVariant, std::size_t kPrecision>
__global__ void __launch_bounds__(kBlockThreads)
    state8_kernel(const __grid_constant__ StepLaunch launch) {
  using W = State8Warp<kernels::variant_at(kVariant), kernels::precision_at(kPrecision)>;
  BlockWork<typename W::C> work;
  if (!block_work(launch, blockIdx.x, work)) return;
  const unsigned lane = threadIdx.x % kWarpLanes;
  for_each_warp_block(work, threadIdx.x / kWarpLanes, blockDim.x / kWarpLanes,
                      [&](std::size_t start) {
                        typename W::Lane l;
                        W::update(*work.tensor, start, lane, work.c, work.seed, l);
                        std::uint32_t absmax[3];
                        for (int s = 0; s < 3; ++s) {
                          std::uint32_t m = l.absmax[s];
                          for (unsigned offset = kWarpLanes / 2; offset > 0; offset /= 2) {
                            const std::uint32_t other = __shfl_xor_sync(0xFFFFFFFFu, m, offset);
                            m = other > m ? other : m;
                          }
                          absmax[s] = m;
                        }
                        W::store(*work.tensor, start, lane, l, absmax);
                      });
}

template <std::size_t kVariant, std::size_t kPrecision>
void launch_state8(const StepLaunch& launch, int blocks, cudaStream_t stream) {
  state8_kernel<kVariant, kPrecision><<<blocks, kBlockThreads, 0, stream>>>(launch);
}

template <std::size_t kPrecision, std::size_t kVariant>
constexpr LaunchFn launcher() {
  constexpr Precision kP = kernels::precision_at(kPrecision);
  if constexpr (kP.param == DType(RMSPROP_CUDA_PARAM) && kP.supported() &&
                kernels::is_canonical(kVariant)) {
    if constexpr (kP.state == DType::i8_block) {
      return &launch_state8<kVariant, kPrecision>;
    } else {
      return &launch_step<kVariant, kPrecision>;
    }
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
