// The fused multi-tensor step kernel: the element kernel of apply.hpp (and so the rule of
// rule.hpp) per element, over the chunks a StepLaunch describes (NOTE: [multi-tensor launches]).
#pragma once

#include <cstddef>
#include <cstdint>

#include "../kernels/apply.hpp"
#include "launch.hpp"
#include "step_table.cuh"

namespace rmsprop::cuda::detail {

// N values of T that one aligned access moves (16 bytes for the parameter: see pack_elements).
template <class T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

template <int N, class T>
__device__ RMSPROP_FORCE_INLINE void load_pack(T (&dst)[N], const T* src) {
  const Pack<T, N> p = *reinterpret_cast<const Pack<T, N>*>(src);
#pragma unroll
  for (int j = 0; j < N; ++j) dst[j] = p.v[j];
}

template <int N, class T>
__device__ RMSPROP_FORCE_INLINE void store_pack(T* dst, const T (&src)[N]) {
  Pack<T, N> p;
#pragma unroll
  for (int j = 0; j < N; ++j) p.v[j] = src[j];
  *reinterpret_cast<Pack<T, N>*>(dst) = p;
}

template <std::size_t kVariant, std::size_t kPrecision>
__global__ void __launch_bounds__(kBlockThreads)
    step_kernel(const __grid_constant__ StepLaunch launch) {
  constexpr Variant kV = kernels::variant_at(kVariant);
  constexpr Precision kP = kernels::precision_at(kPrecision);
  using K = kernels::ElementKernel<kV, kP>;
  using C = typename K::C;
  using PRaw = typename K::PRaw;
  using SRaw = typename K::SRaw;
  constexpr int kN = int(pack_elements(kP.param));

  if (launch.skip != nullptr && *launch.skip != 0) return;
  const TensorSlot& t = launch.tensors[launch.block_tensor[blockIdx.x]];
  std::uint32_t seed = t.seed;
  Coefficients<double> coefficients;
  if (launch.lr != nullptr) {
    // Capturable: prepare_steps has counted this step. A replayed graph repeats one host seed,
    // so the device step count varies it per step.
    const std::int64_t step = *t.step;
    coefficients = launch.recipe.at(step, *launch.lr);
    seed ^= std::uint32_t(step) * 0x9E3779B9u;
  } else {
    coefficients = launch.coefficients[t.coefficients];
  }
  const Coefficients<C> c = Coefficients<C>::cast(coefficients);
  const typename K::Buffers b{
      static_cast<PRaw*>(t.param),           static_cast<const PRaw*>(t.grad),
      static_cast<SRaw*>(t.square_avg),      static_cast<SRaw*>(t.grad_avg),
      static_cast<SRaw*>(t.momentum_buffer), t.master};
  const std::size_t begin = std::size_t(launch.block_chunk[blockIdx.x]) * kChunkElements;
  const std::size_t end = begin + kChunkElements < t.size ? begin + kChunkElements : t.size;

  std::size_t scalar_begin = begin;
  if (t.aligned) {
    // Whole packs: registers hold kN elements of each buffer, the element kernel runs on them
    // as on memory, then each buffer is written back with whole-pack stores.
    const std::size_t packed_end = begin + (end - begin) / kN * kN;
    for (std::size_t i = begin + std::size_t(threadIdx.x) * kN; i < packed_end;
         i += std::size_t(blockDim.x) * kN) {
      PRaw param[kN], grad[kN];
      SRaw square_avg[kN], grad_avg[kN], momentum_buffer[kN];
      float master[kN];
      load_pack(grad, b.grad + i);
      if constexpr (kP.master_weights) {
        load_pack(master, b.master + i);
      } else {
        load_pack(param, b.param + i);
      }
      if constexpr (kV.uses_square_avg()) load_pack(square_avg, b.square_avg + i);
      if constexpr (kV.uses_grad_avg()) load_pack(grad_avg, b.grad_avg + i);
      if constexpr (kV.uses_momentum_buffer()) load_pack(momentum_buffer, b.momentum_buffer + i);
      const typename K::Buffers r{param, grad, square_avg, grad_avg, momentum_buffer, master};
#pragma unroll
      for (int j = 0; j < kN; ++j) K::apply(r, j, std::uint32_t(i + j), c, seed);
      store_pack(b.param + i, param);
      if constexpr (kP.master_weights) store_pack(b.master + i, master);
      if constexpr (kV.uses_square_avg()) store_pack(b.square_avg + i, square_avg);
      if constexpr (kV.uses_grad_avg()) store_pack(b.grad_avg + i, grad_avg);
      if constexpr (kV.uses_momentum_buffer()) store_pack(b.momentum_buffer + i, momentum_buffer);
    }
    scalar_begin = packed_end;
  }
  for (std::size_t i = scalar_begin + threadIdx.x; i < end; i += blockDim.x) {
    K::apply(b, i, std::uint32_t(i), c, seed);
  }
}

template <std::size_t kVariant, std::size_t kPrecision>
void launch_step(const StepLaunch& launch, int blocks, cudaStream_t stream) {
  step_kernel<kVariant, kPrecision><<<blocks, kBlockThreads, 0, stream>>>(launch);
}

template <std::size_t kPrecision, std::size_t kVariant>
constexpr LaunchFn launcher() {
  constexpr Precision kP = kernels::precision_at(kPrecision);
  if constexpr (kP.param == DType(RMSPROP_CUDA_PARAM) && kP.supported() &&
                kernels::is_canonical(kVariant)) {
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
