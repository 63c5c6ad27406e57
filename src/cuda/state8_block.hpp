// One 8-bit block of the fused step on the device, as the lanes of a warp (NOTE: [8-bit state
// on CUDA]). Host-device: the CUDA kernel runs it per warp, and the host tests run the lanes
// of every warp in turn to check it against the reference kernel without a GPU.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../kernels/apply.hpp"
#include "../kernels/state8.hpp"
#include "launch.hpp"
#include "step_block.hpp"

namespace rmsprop::cuda::detail {

// NOTE: [8-bit state on CUDA]
// A block's scale depends on all its values, so a block is one warp's: lane j holds values j,
// j + 32, ..., j + 224 (each load and store of the warp touches consecutive addresses, whatever
// the alignment). A lane decodes its state, runs the element kernel of float32 state on it in
// registers (as the CPU kernels do in scratch), takes square_avg's sqrt and the largest finite
// |value| of each buffer; the warp's max of those (an exact integer max on the bits: its order
// does not matter) gives the scales, with which each lane encodes its values. Every operation
// is the scalar codec's (state8.hpp), value for value, so the codes are the reference kernel's
// bits (tests/cuda_kernel_on_host_test.cpp runs these lane functions for every lane on the
// host). The rule's own root is not used here (the CPU's NOTE: [8-bit encoder takes the rule's
// root]): the device is bound by memory, not by square roots.
inline constexpr unsigned kWarpLanes = 32;
inline constexpr std::size_t kLaneValues = kState8Block / kWarpLanes;
static_assert(kChunkElements % kState8Block == 0, "a chunk is whole 8-bit blocks");

template <Variant kV, Precision kP>
struct State8Warp {
  using K = kernels::ElementKernel<kV, kernels::element_precision(kP)>;
  using C = typename K::C;
  using PRaw = typename K::PRaw;

  // One lane's share of a block between update and store.
  struct Lane {
    // per buffer (square_avg, grad_avg, momentum_buffer): decoded, updated, then the values
    // to encode (square_avg: sqrt(v))
    float values[3][kLaneValues];
    std::uint32_t absmax[3];  // the largest finite |value| of each, as bits
    unsigned count;           // this lane's values in the block: values[.][0, count)
  };

  // f(codec kind it encodes with, buffer index, its memory) for each buffer the variant uses
  template <class F>
  RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE static void each(const TensorSlot& t, F&& f) {
    kernels::each_state8_buffer<kernels::state8_buffers(kV), kernels::State8Kind::square_avg>(t, f);
  }

  // The block at element `start` of t, as lane `lane`: the rule's new parameters are stored;
  // the state waits in `l` for the warp's absmax. (Loops run over all kLaneValues, each value
  // guarded: unrolled, the device keeps the arrays in registers.)
  RMSPROP_HOST_DEVICE static void update(const TensorSlot& t, std::size_t start, unsigned lane,
                                         const Coefficients<C>& c, std::uint32_t seed, Lane& l) {
    const std::size_t count = t.size - start < kState8Block ? t.size - start : kState8Block;
    l.count = lane < count ? unsigned((count - lane + kWarpLanes - 1) / kWarpLanes) : 0u;
    auto* param = static_cast<PRaw*>(t.param);
    const auto* grad = static_cast<const PRaw*>(t.grad);
    PRaw p[kLaneValues]{}, g[kLaneValues]{};
    float master[kLaneValues]{};
    RMSPROP_UNROLL
    for (unsigned k = 0; k < kLaneValues; ++k) {
      const std::size_t i = start + lane + kWarpLanes * k;
      if (k >= l.count) continue;
      g[k] = grad[i];
      if constexpr (kP.master_weights) {
        master[k] = t.master[i];
      } else {
        p[k] = param[i];
      }
    }
    l.absmax[0] = l.absmax[1] = l.absmax[2] = 0;
    each(t, [&](auto kind, int s, void* base) {
      const kernels::State8Block b = kernels::state8_block(base, t.size, start / kState8Block);
      const float scale = *b.scale;
      RMSPROP_UNROLL
      for (unsigned k = 0; k < kLaneValues; ++k) {
        l.values[s][k] = k < l.count ? kernels::decode_value<decltype(kind)::value>(
                                           b.codes[lane + kWarpLanes * k], scale)
                                     : 0.0f;
      }
    });
    const typename K::Buffers r{p, g, l.values[0], l.values[1], l.values[2], master};
    RMSPROP_UNROLL
    for (unsigned k = 0; k < kLaneValues; ++k) {
      if (k < l.count) K::apply(r, k, std::uint32_t(start + lane + kWarpLanes * k), c, seed);
    }
    RMSPROP_UNROLL
    for (unsigned k = 0; k < kLaneValues; ++k) {
      const std::size_t i = start + lane + kWarpLanes * k;
      if (k >= l.count) continue;
      param[i] = p[k];
      if constexpr (kP.master_weights) t.master[i] = master[k];
    }
    each(t, [&](auto kind, int s, void*) {
      std::uint32_t m = 0;
      RMSPROP_UNROLL
      for (unsigned k = 0; k < kLaneValues; ++k) {
        if constexpr (decltype(kind)::value == kernels::State8Kind::square_avg) {
          l.values[s][k] = rmsprop::detail::sqrt(l.values[s][k]);
        }
        const std::uint32_t a = kernels::finite_abs_bits(l.values[s][k]);  // 0 past count
        m = a > m ? a : m;
      }
      l.absmax[s] = m;
    });
  }

  // The codes of lane `lane`'s values of the block at `start`, with `absmax` the warp's largest
  // of each buffer's; lane 0 stores the scales.
  RMSPROP_HOST_DEVICE static void store(const TensorSlot& t, std::size_t start, unsigned lane,
                                        Lane& l, const std::uint32_t (&absmax)[3]) {
    each(t, [&](auto kind, int s, void* base) {
      constexpr kernels::State8Kind kKind = decltype(kind)::value;
      const kernels::State8Block b = kernels::state8_block(base, t.size, start / kState8Block);
      // all kLaneValues lifted where the block needs it (past count: zeros, never stored)
      const kernels::EncodeScale e = kernels::scale_from_absmax<kKind>(
          std::bit_cast<float>(absmax[s]), l.values[s], kLaneValues);
      if (lane == 0) *b.scale = e.scale;
      RMSPROP_UNROLL
      for (unsigned k = 0; k < kLaneValues; ++k) {
        if (k >= l.count) continue;
        b.codes[lane + kWarpLanes * k] =
            kernels::CodeOf<kKind>::encode(l.values[s][k], e.scale, e.inverse);
      }
    });
  }
};

// f(start) for each 8-bit block (at element `start`) of a launch block's chunk that warp
// `warp` of `warps` steps: every warps-th, from its own.
template <class C, class F>
RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE void for_each_warp_block(const BlockWork<C>& work,
                                                                  unsigned warp, unsigned warps,
                                                                  F&& f) {
  for (std::size_t start = work.begin + std::size_t(warp) * kState8Block; start < work.end;
       start += std::size_t(warps) * kState8Block) {
    f(start);
  }
}

}  // namespace rmsprop::cuda::detail
