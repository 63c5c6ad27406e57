// The few macros that let the rule compile unchanged for the host and for CUDA devices.
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define RMSPROP_HOST_DEVICE __host__ __device__
#define RMSPROP_UNROLL _Pragma("unroll")
#else
#define RMSPROP_HOST_DEVICE
#define RMSPROP_UNROLL  // host compilers run the same code (tests) without the hint
#endif

#if defined(_MSC_VER)
#define RMSPROP_FORCE_INLINE __forceinline
#else
#define RMSPROP_FORCE_INLINE inline __attribute__((always_inline))
#endif

namespace rmsprop::detail {

RMSPROP_HOST_DEVICE inline float sqrt(float x) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(x);
#else
  return std::sqrt(x);
#endif
}

RMSPROP_HOST_DEVICE inline double sqrt(double x) {
#if defined(__CUDA_ARCH__)
  return __dsqrt_rn(x);
#else
  return std::sqrt(x);
#endif
}

RMSPROP_HOST_DEVICE inline double pow(double x, double y) {
#if defined(__CUDA_ARCH__)
  return ::pow(x, y);
#else
  return std::pow(x, y);
#endif
}

}  // namespace rmsprop::detail
