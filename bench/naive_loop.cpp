// The obvious fused loop a person writes for RMSProp (PyTorch conventions), OpenMP + omp simd,
// one tensor at a time, the variant's switches fixed at compile time. Not the library's rule:
// an independent hand-written loop, the peer that rmsprop-bench compares the kernel with.
#include "naive_loop.hpp"

#include <bit>
#include <cmath>
#include <cstdint>

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
