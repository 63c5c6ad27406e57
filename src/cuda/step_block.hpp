// One block of the fused multi-tensor step: the element kernel of apply.hpp (and so the rule
// of rule.hpp) per element, over the chunk a StepLaunch assigns to the block (NOTE:
// [multi-tensor launches]). Host-device: the CUDA kernel calls it per block, and the host
// tests run it for every block and thread to check the kernel's walk without a GPU.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../kernels/apply.hpp"
#include "launch.hpp"

namespace rmsprop::cuda::detail {

// N values of T that one aligned access moves (16 bytes for the parameter: see pack_elements).
template <class T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

template <int N, class T>
RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE void load_pack(T (&dst)[N], const T* src) {
  const Pack<T, N> p = *reinterpret_cast<const Pack<T, N>*>(src);
  RMSPROP_UNROLL
  for (int j = 0; j < N; ++j) dst[j] = p.v[j];
}

template <int N, class T>
RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE void store_pack(T* dst, const T (&src)[N]) {
  Pack<T, N> p;
  RMSPROP_UNROLL
  for (int j = 0; j < N; ++j) p.v[j] = src[j];
  *reinterpret_cast<Pack<T, N>*>(dst) = p;
}

// What a block of a step launch works on: its tensor, its chunk [begin, end), the step's
// coefficients in the kernel's arithmetic type C and the stochastic-rounding seed.
template <class C>
struct BlockWork {
  const TensorSlot* tensor;
  std::size_t begin, end;
  Coefficients<C> c;
  std::uint32_t seed;
};

// Block `block`'s work, or false when the launch's skip flag is set.
template <class C>
RMSPROP_HOST_DEVICE inline bool block_work(const StepLaunch& launch, unsigned block,
                                           BlockWork<C>& work) {
  if (launch.skip != nullptr && *launch.skip != 0) return false;
  const int slot = slot_of_block(launch.first_block, launch.tensor_count, block);
  const TensorSlot& t = launch.tensors[slot];
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
  const std::size_t begin = std::size_t(block - launch.first_block[slot]) * kChunkElements;
  work = {&t, begin, begin + kChunkElements < t.size ? begin + kChunkElements : t.size,
          Coefficients<C>::cast(coefficients), seed};
  return true;
}

// Block `block` of a launch, as thread `thread` of `threads`: each thread updates its own
// elements (no shared memory, no synchronisation), so the host can run every thread of every
// block in turn and get the device's results (tests/cuda_kernel_on_host_test.cpp).
template <Variant kV, Precision kP>
RMSPROP_HOST_DEVICE void step_block(const StepLaunch& launch, unsigned block, unsigned thread,
                                    unsigned threads) {
  using K = kernels::ElementKernel<kV, kP>;
  using C = typename K::C;
  using PRaw = typename K::PRaw;
  using SRaw = typename K::SRaw;
  constexpr int kN = int(pack_elements(kP.param));

  BlockWork<C> work;
  if (!block_work(launch, block, work)) return;
  const TensorSlot& t = *work.tensor;
  const Coefficients<C>& c = work.c;
  const std::uint32_t seed = work.seed;
  const std::size_t begin = work.begin, end = work.end;
  const typename K::Buffers b{
      static_cast<PRaw*>(t.param),           static_cast<const PRaw*>(t.grad),
      static_cast<SRaw*>(t.square_avg),      static_cast<SRaw*>(t.grad_avg),
      static_cast<SRaw*>(t.momentum_buffer), t.master};

  std::size_t scalar_begin = begin;
  if (t.aligned) {
    // Whole packs: registers hold kN elements of each buffer, the element kernel runs on them
    // as on memory, then each buffer is written back with whole-pack stores.
    const std::size_t packed_end = begin + (end - begin) / kN * kN;
    for (std::size_t i = begin + std::size_t(thread) * kN; i < packed_end;
         i += std::size_t(threads) * kN) {
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
      RMSPROP_UNROLL
      for (int j = 0; j < kN; ++j) K::apply(r, j, std::uint32_t(i + j), c, seed);
      store_pack(b.param + i, param);
      if constexpr (kP.master_weights) store_pack(b.master + i, master);
      if constexpr (kV.uses_square_avg()) store_pack(b.square_avg + i, square_avg);
      if constexpr (kV.uses_grad_avg()) store_pack(b.grad_avg + i, grad_avg);
      if constexpr (kV.uses_momentum_buffer()) store_pack(b.momentum_buffer + i, momentum_buffer);
    }
    scalar_begin = packed_end;
  }
  for (std::size_t i = scalar_begin + thread; i < end; i += threads) {
    K::apply(b, i, std::uint32_t(i), c, seed);
  }
}

// Capturable steps: thread k counts tensor k's step (every tensor is in one launch only),
// before the step kernel reads it (unless the skip flag is set).
RMSPROP_HOST_DEVICE inline void count_step(const StepLaunch& launch, int k, int tensors) {
  if (k >= tensors) return;
  if (launch.skip != nullptr && *launch.skip != 0) return;
  *launch.tensors[k].step += 1;
}

}  // namespace rmsprop::cuda::detail
