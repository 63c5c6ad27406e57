// How kernels load and store each storage type: values are computed in float32 (float64 for
// float64 storage) and converted inside the fused pass.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "rmsprop/half.hpp"
#include "rmsprop/kernel.hpp"

namespace rmsprop::kernels {

// Storage<S>::Raw is what the kernel's pointers point to: a plain arithmetic type, because
// GCC does not vectorize loads of a struct (bfloat16{bits}); load/store convert it.
template <class S>
struct Storage;

template <>
struct Storage<float> {
  using Raw = float;
  using Compute = float;
  RMSPROP_HOST_DEVICE static float load(float x) { return x; }
  RMSPROP_HOST_DEVICE static float store(float x) { return x; }
};

template <>
struct Storage<double> {
  using Raw = double;
  using Compute = double;
  RMSPROP_HOST_DEVICE static double load(double x) { return x; }
  RMSPROP_HOST_DEVICE static double store(double x) { return x; }
};

template <>
struct Storage<bfloat16> {
  using Raw = std::uint16_t;
  using Compute = float;
  RMSPROP_HOST_DEVICE static float load(std::uint16_t bits) { return to_float(bfloat16{bits}); }
  RMSPROP_HOST_DEVICE static std::uint16_t store(float x) { return to_bfloat16(x).bits; }
};

template <>
struct Storage<float16> {
  using Raw = std::uint16_t;
  using Compute = float;
  RMSPROP_HOST_DEVICE static float load(std::uint16_t bits) { return to_float(float16{bits}); }
  RMSPROP_HOST_DEVICE static std::uint16_t store(float x) { return to_float16(x).bits; }
};

// 32 well-mixed bits from a seed and an element index (the "lowbias32" integer hash): each
// element's stochastic rounding depends only on (seed, index), never on threads or chunks.
RMSPROP_HOST_DEVICE inline std::uint32_t rounding_bits(std::uint32_t seed, std::uint32_t index) {
  std::uint32_t x = index * 0x9E3779B9u + seed;
  x ^= x >> 16;
  x *= 0x7FEB352Du;
  x ^= x >> 15;
  x *= 0x846CA68Bu;
  x ^= x >> 16;
  return x;
}

// NaN and ±inf are exactly the values whose exponent bits are all ones: a test on the bits as
// unsigned integers, which vectorizes on the CPU and needs no float type on any backend.
template <DType kD>
struct NonFiniteBits {
  static constexpr std::size_t kSize = dtype_info(kD).size;
  using Bits = std::conditional_t<kSize == 8, std::uint64_t,
                                  std::conditional_t<kSize == 4, std::uint32_t, std::uint16_t>>;
  static constexpr Bits kExponent = Bits(dtype_info(kD).exponent_mask);  // rmsprop/dtype.hpp
};

template <DType kD>
RMSPROP_HOST_DEVICE inline bool is_non_finite_bits(typename NonFiniteBits<kD>::Bits bits) {
  return (bits & NonFiniteBits<kD>::kExponent) == NonFiniteBits<kD>::kExponent;
}

// Element i of a buffer of `dtype`, as a double (exact for every storage type); and the
// inverse, rounding to the storage type. For the slow paths: initialization, conversion,
// error messages.
double load_as_double(DType dtype, const void* data, std::size_t i);
void store_from_double(DType dtype, void* data, std::size_t i, double value);

}  // namespace rmsprop::kernels
