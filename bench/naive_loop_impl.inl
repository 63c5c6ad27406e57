// The obvious fused loop a person writes for RMSProp (PyTorch conventions), OpenMP + omp simd,
// one tensor at a time, the variant's switches fixed at compile time. Not the library's rule:
// an independent hand-written loop, the peer that rmsprop-bench compares the kernel with.
// Included once per SIMD target (naive_loop_<target>.cpp, each with that target's flags, in
// namespace RMSPROP_NAIVE_NS); naive_loop.cpp picks the one the library's kernels run with.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "rmsprop/kernel.hpp"
#include "rmsprop/state8.hpp"

namespace RMSPROP_NAIVE_NS {
namespace {

// bfloat16 as a person writes it: widen by a shift, narrow with round-to-nearest-even.
inline float load(float x) {
  return x;
}
inline float load(std::uint16_t x) {
  return std::bit_cast<float>(std::uint32_t(x) << 16);
}
inline void store(float& to, float x) {
  to = x;
}
inline void store(std::uint16_t& to, float x) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(x);
  to = std::uint16_t((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

template <bool kMomentum, bool kCentered, class T>
void loop(T* __restrict p, const T* __restrict g, float* __restrict sq, float* __restrict m,
          float* __restrict b, long n, int threads, float bc) {
  const float lr = 0.01f, alpha = 0.99f, eps = 1e-8f, mu = 0.9f;
#pragma omp parallel for simd schedule(static) num_threads(threads) if (n >= 65536)
  for (long i = 0; i < n; ++i) {
    float gi = load(g[i]);
    float vi = alpha * sq[i] + (1 - alpha) * gi * gi;
    sq[i] = vi;
    float w = vi * bc;
    if constexpr (kCentered) {
      float mi = m[i] + (1 - alpha) * (gi - m[i]);
      m[i] = mi;
      w = w - mi * mi;
      w = w > 0 ? w : 0;
    }
    float u = gi / (std::sqrt(w) + eps);
    if constexpr (kMomentum) {
      float bi = mu * b[i] + u;
      b[i] = bi;
      u = bi;
    }
    store(p[i], load(p[i]) - lr * u);
  }
}

template <class T>
void dispatch(bool momentum, bool centered, void* p, const void* g, float* sq, float* m, float* b,
              long n, int threads, float bc) {
  T* pt = static_cast<T*>(p);
  const T* gt = static_cast<const T*>(g);
  if (centered) return loop<true, true>(pt, gt, sq, m, b, n, threads, bc);
  if (momentum) return loop<true, false>(pt, gt, sq, m, b, n, threads, bc);
  loop<false, false>(pt, gt, sq, m, b, n, threads, bc);
}

}  // namespace

void naive_loop(bool momentum, bool centered, bool bf16, void* p, const void* g, float* sq,
                float* m, float* b, long n, int threads, float bc) {
  if (bf16) return dispatch<std::uint16_t>(momentum, centered, p, g, sq, m, b, n, threads, bc);
  dispatch<float>(momentum, centered, p, g, sq, m, b, n, threads, bc);
}

namespace {

// The memory traffic of a step without its arithmetic: read and write exactly the buffers the
// optimizer step reads and writes (one add each; an 8-bit code or a 16-bit pattern of state
// gets an integer add: traffic, not arithmetic), so its speed is the roofline for that access
// pattern on this machine.
template <int kBuffers, class P, class S>
void traffic(P* __restrict p, const P* __restrict g, S* __restrict s0, S* __restrict s1,
             S* __restrict s2, long n) {
#pragma omp simd
  for (long i = 0; i < n; ++i) {
    const float gi = load(g[i]);
    store(p[i], load(p[i]) + gi);
    const S add = S(std::is_same_v<S, float> ? gi : 1.0f);
    if constexpr (kBuffers >= 1) s0[i] += add;
    if constexpr (kBuffers >= 2) s1[i] += add;
    if constexpr (kBuffers >= 3) s2[i] += add;
  }
}

// Elements [begin, end) of one tensor: its parameter, gradient and first `buffers` of s.
template <class P, class S>
void traffic_range(int buffers, void* p, const void* g, void* const* s, long begin, long end) {
  P* pt = static_cast<P*>(p) + begin;
  const P* gt = static_cast<const P*>(g) + begin;
  S* st[3];
  for (int k = 0; k < 3; ++k) st[k] = k < buffers ? static_cast<S*>(s[k]) + begin : nullptr;
  const long n = end - begin;
  if (buffers >= 3) return traffic<3>(pt, gt, st[0], st[1], st[2], n);
  if (buffers == 2) return traffic<2>(pt, gt, st[0], st[1], st[2], n);
  traffic<1>(pt, gt, st[0], st[1], st[2], n);
}

// range(tensor, begin, end) for each chunk as fused_step cuts them (kChunkElements, tensor after
// tensor, dealt to `threads` threads statically).
template <class Range>
void each_chunk(std::size_t tensors, long n, int threads, Range range) {
  const long chunk = long(rmsprop::kChunkElements), per = (n + chunk - 1) / chunk;
  const long chunks = per * long(tensors);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (long c = 0; c < chunks; ++c) {
    const long begin = c % per * chunk;
    range(std::size_t(c / per), begin, std::min(n, begin + chunk));
  }
}

}  // namespace

void traffic_loop(int buffers, bool bf16, std::size_t tensors, void* const* p, const void* const* g,
                  float* const* sq, float* const* m, float* const* b, long n, int threads) {
  each_chunk(tensors, n, threads, [&](std::size_t t, long begin, long end) {
    void* const s[3] = {sq[t], b[t], m[t]};  // momentum alone: square_avg and momentum_buffer
    if (bf16) return traffic_range<std::uint16_t, float>(buffers, p[t], g[t], s, begin, end);
    traffic_range<float, float>(buffers, p[t], g[t], s, begin, end);
  });
}

void state_traffic_loop(int buffers, int state_bytes, std::size_t tensors, float* const* p,
                        const float* const* g, void* const* const* state, long n, int threads) {
  each_chunk(tensors, n, threads, [&](std::size_t t, long begin, long end) {
    void* const s[3] = {state[0][t], buffers >= 2 ? state[1][t] : nullptr,
                        buffers >= 3 ? state[2][t] : nullptr};
    if (state_bytes == 4) return traffic_range<float, float>(buffers, p[t], g[t], s, begin, end);
    if (state_bytes == 2) {
      return traffic_range<float, std::uint16_t>(buffers, p[t], g[t], s, begin, end);
    }
    traffic_range<float, std::uint8_t>(buffers, p[t], g[t], s, begin, end);
    // and the block scales of the codes
    const std::size_t scales = rmsprop::state8_scales_offset(std::size_t(n));
    const long block = long(rmsprop::kState8Block);
    for (int k = 0; k < buffers; ++k) {
      auto* scale = reinterpret_cast<float*>(static_cast<char*>(s[k]) + scales);
      for (long j = begin / block; j < (end + block - 1) / block; ++j) scale[j] += 1.0f;
    }
  });
}

}  // namespace RMSPROP_NAIVE_NS
