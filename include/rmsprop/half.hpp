// 16-bit floating-point storage types for parameters, gradients and optimizer state.
//
// They are storage only: the rule computes in float32 and converts on load and store, inside
// the fused pass. Conversions to 16 bits round to nearest, ties to even (NaN stays NaN);
// `to_bfloat16_stochastic` rounds up with probability equal to the discarded fraction.
#pragma once

#include <bit>
#include <cstdint>

#include "rmsprop/portability.hpp"

namespace rmsprop {

struct bfloat16 {
  std::uint16_t bits;
};
struct float16 {
  std::uint16_t bits;
};

RMSPROP_HOST_DEVICE inline float to_float(bfloat16 x) {
  return std::bit_cast<float>(std::uint32_t(x.bits) << 16);
}

// The conversions below are branch-free (selects over integer bit patterns) so that the
// kernels' loops, which call them per element, vectorize.
RMSPROP_HOST_DEVICE inline bfloat16 to_bfloat16(float x) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(x);
  const bool nan = (u & 0x7FFFFFFFu) > 0x7F800000u;
  const std::uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  return {std::uint16_t(nan ? ((u >> 16) | 0x40u) : rounded)};
}

// Rounds up with probability (discarded low 16 bits)/2^16, given 16 random bits in `random`:
// E[to_float(result)] = x, so many small updates survive where round-to-nearest drops them.
RMSPROP_HOST_DEVICE inline bfloat16 to_bfloat16_stochastic(float x, std::uint32_t random) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(x);
  const bool finite = (u & 0x7F800000u) != 0x7F800000u;
  const std::uint32_t stochastic = (u + (random & 0xFFFFu)) >> 16;
  return {std::uint16_t(finite ? stochastic : to_bfloat16(x).bits)};
}

// IEEE binary16 (after F. Giesen's branch-free conversions), round to nearest even; NaN
// becomes the quiet NaN 0x7E00 with the input's sign.
RMSPROP_HOST_DEVICE inline float to_float(float16 x) {
  const std::uint32_t h = x.bits;
  const std::uint32_t shifted = (h & 0x7FFFu) << 13;  // exponent and mantissa in place
  const std::uint32_t exponent = shifted & 0x0F800000u;
  const std::uint32_t normal = shifted + ((127u - 15u) << 23);
  const std::uint32_t special = normal + ((128u - 16u) << 23);  // inf and NaN: exponent 255
  // subnormal: let the FPU normalize by subtracting the implicit one it gains
  const float subnormal =
      std::bit_cast<float>(normal + (1u << 23)) - std::bit_cast<float>(113u << 23);
  const std::uint32_t magnitude =
      exponent == 0x0F800000u ? special
                              : (exponent == 0 ? std::bit_cast<std::uint32_t>(subnormal) : normal);
  return std::bit_cast<float>(magnitude | ((h & 0x8000u) << 16));
}

RMSPROP_HOST_DEVICE inline float16 to_float16(float x) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(x);
  const std::uint32_t sign = u & 0x80000000u;
  const std::uint32_t f = u ^ sign;
  const std::uint32_t overflow = f > 0x7F800000u ? 0x7E00u : 0x7C00u;  // NaN or ±inf
  // subnormal result: adding 0.5 (as 2^-1 at the right exponent) makes the FPU round the
  // dropped bits to nearest even
  const std::uint32_t denorm_magic = ((127u - 15u) + (23u - 10u) + 1u) << 23;
  const std::uint32_t subnormal =
      std::bit_cast<std::uint32_t>(std::bit_cast<float>(f) + std::bit_cast<float>(denorm_magic)) -
      denorm_magic;
  const std::uint32_t normal = (f + ((15u - 127u) << 23) + 0xFFFu + ((f >> 13) & 1u)) >> 13;
  const std::uint32_t magnitude =
      f >= ((127u + 16u) << 23) ? overflow : (f < (113u << 23) ? subnormal : normal);
  return {std::uint16_t(magnitude | (sign >> 16))};
}

}  // namespace rmsprop
