// How kernels load and store each storage type: values are computed in float32 (float64 for
// float64 storage) and converted inside the fused pass.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

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

// The values of a state buffer of `n` values of any state dtype, as doubles; and the inverse.
// 8-bit buffers (DType::i8_block) decode and encode whole blocks with the codec of their slot
// (`square_avg`: sqrt(v) unsigned; else signed). For the slow paths, as above. The _range
// forms read or write values [begin, begin + size) of the buffer: `begin` a multiple of
// kState8Block, and the range whole blocks or ending at n.
std::vector<double> load_state(DType dtype, bool square_avg, const void* data, std::size_t n);
void store_state(DType dtype, bool square_avg, void* data, std::span<const double> values);
void load_state_range(DType dtype, bool square_avg, const void* data, std::size_t n,
                      std::size_t begin, std::span<double> out);
void store_state_range(DType dtype, bool square_avg, void* data, std::size_t n, std::size_t begin,
                       std::span<const double> values);

}  // namespace rmsprop::kernels
