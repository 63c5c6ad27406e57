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

// The memory traffic of a variant without its arithmetic: read and write exactly the buffers
// the optimizer step reads and writes (one add each), so its speed is the roofline for that
// access pattern on this machine.
template <int kBuffers, class T>
void traffic(T* __restrict p, const T* __restrict g, float* __restrict sq, float* __restrict m,
             float* __restrict b, long n) {
#pragma omp simd
  for (long i = 0; i < n; ++i) {
    const float gi = load(g[i]);
    store(p[i], load(p[i]) + gi);
    if constexpr (kBuffers >= 1) sq[i] += gi;
    if constexpr (kBuffers >= 2) b[i] += gi;
    if constexpr (kBuffers >= 3) m[i] += gi;
  }
}

template <class T>
void traffic_dispatch(int buffers, void* p, const void* g, float* sq, float* m, float* b, long n) {
  T* pt = static_cast<T*>(p);
  const T* gt = static_cast<const T*>(g);
  if (buffers >= 3) return traffic<3>(pt, gt, sq, m, b, n);
  if (buffers == 2) return traffic<2>(pt, gt, sq, m, b, n);
  traffic<1>(pt, gt, sq, m, b, n);
}

}  // namespace

void traffic_loop(int buffers, bool bf16, std::size_t tensors, void* const* p, const void* const* g,
                  float* const* sq, float* const* m, float* const* b, long n, int threads) {
  auto one = [&](std::size_t k, long begin, long end) {
    const std::size_t width = bf16 ? 2 : 4;
    auto* pk = static_cast<char*>(p[k]) + begin * width;
    auto* gk = static_cast<const char*>(g[k]) + begin * width;
    if (bf16) {
      traffic_dispatch<std::uint16_t>(buffers, pk, gk, sq[k] + begin, m[k] + begin, b[k] + begin,
                                      end - begin);
    } else {
      traffic_dispatch<float>(buffers, pk, gk, sq[k] + begin, m[k] + begin, b[k] + begin,
                              end - begin);
    }
  };
  if (tensors == 1) {
    const long chunk = 16384, chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (long c = 0; c < chunks; ++c) one(0, c * chunk, std::min(n, (c + 1) * chunk));
  } else {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (long k = 0; k < long(tensors); ++k) one(std::size_t(k), 0, n);
  }
}

namespace {

// A chunk of state_traffic_loop: one add per value read and written (an 8-bit code or a 16-bit
// pattern gets an integer add: traffic, not arithmetic).
template <int kBuffers, class S>
void state_traffic(float* __restrict p, const float* __restrict g, S* __restrict s0,
                   S* __restrict s1, S* __restrict s2, long n) {
#pragma omp simd
  for (long i = 0; i < n; ++i) {
    const float gi = g[i];
    p[i] += gi;
    const S add = S(std::is_same_v<S, float> ? gi : 1.0f);
    s0[i] += add;
    if constexpr (kBuffers >= 3) s1[i] += add, s2[i] += add;
  }
}

template <class S>
void state_traffic_chunk(int buffers, float* p, const float* g, void* const* state, long begin,
                         long end) {
  S* s[3];
  for (int k = 0; k < 3; ++k) s[k] = buffers > k ? static_cast<S*>(state[k]) + begin : nullptr;
  if (buffers >= 3) return state_traffic<3>(p + begin, g + begin, s[0], s[1], s[2], end - begin);
  state_traffic<1>(p + begin, g + begin, s[0], s[1], s[2], end - begin);  // s[1], s[2] null
}

}  // namespace

void state_traffic_loop(int buffers, int state_bytes, std::size_t tensors, float* const* p,
                        const float* const* g, void* const* const* state, long n, int threads) {
  const long chunk = long(rmsprop::kChunkElements), per = (n + chunk - 1) / chunk;
  const long chunks = per * long(tensors);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (long c = 0; c < chunks; ++c) {
    const std::size_t t = std::size_t(c / per);
    const long begin = c % per * chunk, end = std::min(n, begin + chunk);
    void* buffers_of_t[3] = {state[0][t], buffers >= 3 ? state[1][t] : nullptr,
                             buffers >= 3 ? state[2][t] : nullptr};
    if (state_bytes == 4) {
      state_traffic_chunk<float>(buffers, p[t], g[t], buffers_of_t, begin, end);
    } else if (state_bytes == 2) {
      state_traffic_chunk<std::uint16_t>(buffers, p[t], g[t], buffers_of_t, begin, end);
    } else {
      state_traffic_chunk<std::uint8_t>(buffers, p[t], g[t], buffers_of_t, begin, end);
      const std::size_t scales = rmsprop::state8_scales_offset(std::size_t(n));
      const long first = begin / long(rmsprop::kState8Block);
      const long last = (end + long(rmsprop::kState8Block) - 1) / long(rmsprop::kState8Block);
      for (int k = 0; k < (buffers >= 3 ? 3 : 1); ++k) {
        auto* scale = reinterpret_cast<float*>(static_cast<char*>(buffers_of_t[k]) + scales);
        for (long j = first; j < last; ++j) scale[j] += 1.0f;
      }
    }
  }
}

}  // namespace RMSPROP_NAIVE_NS
