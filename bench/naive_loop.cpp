// The naive loop for the SIMD target the library's kernels use on this CPU (never the build
// machine's: this library is linked into the installed `rmsprop` CLI).
#include "naive_loop.hpp"

#include "rmsprop/kernel.hpp"

#define RMSPROP_NAIVE_TARGET(ns)                                                                   \
  namespace ns {                                                                                   \
  void naive_loop(bool, bool, bool, void*, const void*, float*, float*, float*, long, int, float); \
  void traffic_loop(int, bool, std::size_t, void* const*, const void* const*, float* const*,       \
                    float* const*, float* const*, long, int);                                      \
  void state_traffic_loop(int, int, std::size_t, float* const*, const float* const*,               \
                          void* const* const*, long, int);                                         \
  }
RMSPROP_NAIVE_TARGET(naive_baseline)
#if defined(RMSPROP_X86_TARGETS)
RMSPROP_NAIVE_TARGET(naive_avx2)
RMSPROP_NAIVE_TARGET(naive_avx512)
#endif

void naive_loop(bool momentum, bool centered, bool bf16, void* p, const void* g, float* sq,
                float* m, float* b, long n, int threads, float bc) {
#if defined(RMSPROP_X86_TARGETS)
  switch (rmsprop::default_simd_target()) {
    case rmsprop::SimdTarget::avx512:
      return naive_avx512::naive_loop(momentum, centered, bf16, p, g, sq, m, b, n, threads, bc);
    case rmsprop::SimdTarget::avx2:
      return naive_avx2::naive_loop(momentum, centered, bf16, p, g, sq, m, b, n, threads, bc);
    case rmsprop::SimdTarget::baseline:
      break;
  }
#endif
  naive_baseline::naive_loop(momentum, centered, bf16, p, g, sq, m, b, n, threads, bc);
}

void traffic_loop(int buffers, bool bf16, std::size_t tensors, void* const* p, const void* const* g,
                  float* const* sq, float* const* m, float* const* b, long n, int threads) {
#if defined(RMSPROP_X86_TARGETS)
  switch (rmsprop::default_simd_target()) {
    case rmsprop::SimdTarget::avx512:
      return naive_avx512::traffic_loop(buffers, bf16, tensors, p, g, sq, m, b, n, threads);
    case rmsprop::SimdTarget::avx2:
      return naive_avx2::traffic_loop(buffers, bf16, tensors, p, g, sq, m, b, n, threads);
    case rmsprop::SimdTarget::baseline:
      break;
  }
#endif
  naive_baseline::traffic_loop(buffers, bf16, tensors, p, g, sq, m, b, n, threads);
}

void state_traffic_loop(int buffers, int state_bytes, std::size_t tensors, float* const* p,
                        const float* const* g, void* const* const* state, long n, int threads) {
#if defined(RMSPROP_X86_TARGETS)
  switch (rmsprop::default_simd_target()) {
    case rmsprop::SimdTarget::avx512:
      return naive_avx512::state_traffic_loop(buffers, state_bytes, tensors, p, g, state, n,
                                              threads);
    case rmsprop::SimdTarget::avx2:
      return naive_avx2::state_traffic_loop(buffers, state_bytes, tensors, p, g, state, n, threads);
    case rmsprop::SimdTarget::baseline:
      break;
  }
#endif
  naive_baseline::state_traffic_loop(buffers, state_bytes, tensors, p, g, state, n, threads);
}
