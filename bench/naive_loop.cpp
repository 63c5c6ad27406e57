// The obvious fused loop a person writes for RMSProp (PyTorch conventions), OpenMP + omp simd,
// one tensor at a time, the variant's switches fixed at compile time. Not the library's rule:
// an independent hand-written loop, the peer that rmsprop-bench compares the kernel with.
#include "naive_loop.hpp"

#include <cmath>

namespace {

template <bool kMomentum, bool kCentered>
void loop(float* __restrict p, const float* __restrict g, float* __restrict sq, float* __restrict m,
          float* __restrict b, long n, int threads, float bc) {
  const float lr = 0.01f, alpha = 0.99f, eps = 1e-8f, mu = 0.9f;
#pragma omp parallel for simd schedule(static) num_threads(threads) if (n >= 65536)
  for (long i = 0; i < n; ++i) {
    float gi = g[i];
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
    p[i] -= lr * u;
  }
}

}  // namespace

void naive_loop(bool momentum, bool centered, float* p, const float* g, float* sq, float* m,
                float* b, long n, int threads, float bc) {
  if (centered) return loop<true, true>(p, g, sq, m, b, n, threads, bc);
  if (momentum) return loop<true, false>(p, g, sq, m, b, n, threads, bc);
  loop<false, false>(p, g, sq, m, b, n, threads, bc);
}
