// 16-bit storage conversions: round to nearest even against an independent reference (the
// compiler's _Float16 for binary16, exhaustive over inputs of interest), stochastic rounding's
// expectation.
#include "rmsprop/half.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "test_util.hpp"

namespace rmsprop {
namespace {

// Floats to try: every exponent with assorted mantissas, signs, zeros, subnormals, inf, NaN.
std::vector<float> probe_floats() {
  std::vector<float> out = {0.0f,
                            -0.0f,
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::denorm_min(),
                            65504.0f,
                            65519.99f,
                            65520.0f,
                            6.1035156e-05f,
                            5.9604645e-08f,
                            2.9802322e-08f};
  testing::SplitMix64 rng(1);
  for (std::uint32_t exponent = 0; exponent < 256; ++exponent) {
    for (int k = 0; k < 600; ++k) {
      std::uint32_t mantissa = std::uint32_t(rng.next()) & 0x7FFFFFu;
      if (k < 8) mantissa = (k % 2 ? 0x1000u : 0xFFFu) << (k / 2);  // near rounding ties
      const std::uint32_t sign = (k & 1) ? 0x80000000u : 0;
      out.push_back(std::bit_cast<float>(sign | (exponent << 23) | mantissa));
    }
  }
  return out;
}

TEST(Half, BFloat16RoundsToNearestEven) {
  for (float x : probe_floats()) {
    const float y = to_float(to_bfloat16(x));
    if (std::isnan(x)) {
      EXPECT_TRUE(std::isnan(y));
      continue;
    }
    // the two bfloat16 neighbours of x, by truncation
    const std::uint32_t u = std::bit_cast<std::uint32_t>(x);
    const float down = std::bit_cast<float>(u & 0xFFFF0000u);
    const float up = std::bit_cast<float>((u & 0xFFFF0000u) + 0x10000u);
    // past the largest bfloat16 the next value up is inf, at the distance 2^128 would be
    const double up_at = std::isinf(up) && !std::isinf(x) ? std::copysign(0x1p128, x) : up;
    const double dd = std::abs(double(x) - double(down)), du = std::abs(up_at - double(x));
    const bool down_even = ((u >> 16) & 1u) == 0;
    const float expected = dd < du ? down : du < dd ? up : (down_even ? down : up);
    EXPECT_EQ(std::bit_cast<std::uint32_t>(y), std::bit_cast<std::uint32_t>(expected)) << x;
  }
}

TEST(Half, Float16MatchesTheCompilersConversionEverywhere) {
#if defined(__FLT16_MAX__)
  for (std::uint32_t bits = 0; bits < 65536; ++bits) {
    const float ours = to_float(float16{std::uint16_t(bits)});
    const float theirs = float(std::bit_cast<_Float16>(std::uint16_t(bits)));
    if (std::isnan(theirs)) {
      EXPECT_TRUE(std::isnan(ours)) << bits;
    } else {
      EXPECT_EQ(std::bit_cast<std::uint32_t>(ours), std::bit_cast<std::uint32_t>(theirs)) << bits;
    }
  }
  for (float x : probe_floats()) {
    const std::uint16_t ours = to_float16(x).bits;
    const std::uint16_t theirs = std::bit_cast<std::uint16_t>(_Float16(x));
    if (std::isnan(x)) {
      EXPECT_EQ(ours & 0x7C00u, 0x7C00u);
      EXPECT_NE(ours & 0x3FFu, 0u);
    } else {
      EXPECT_EQ(ours, theirs) << x;
    }
  }
#else
  GTEST_SKIP() << "this compiler has no _Float16 to compare with";
#endif
}

TEST(Half, StochasticRoundingIsUnbiased) {
  // 1 + 2^-10 lies 1/8 of the way from bfloat16 1.0 to its successor 1 + 2^-7.
  const float x = 1.0f + 0x1p-10f;
  int up = 0;
  for (std::uint32_t r = 0; r < 65536; ++r) up += to_float(to_bfloat16_stochastic(x, r)) > 1.0f;
  EXPECT_EQ(up, 65536 / 8);
  // Exact values never move; inf and NaN go through round-to-nearest.
  for (std::uint32_t r : {0u, 0x7FFFu, 0xFFFFu}) {
    EXPECT_EQ(to_float(to_bfloat16_stochastic(1.5f, r)), 1.5f);
    EXPECT_TRUE(std::isinf(to_float(to_bfloat16_stochastic(INFINITY, r))));
    EXPECT_TRUE(std::isnan(to_float(to_bfloat16_stochastic(NAN, r))));
  }
}

}  // namespace
}  // namespace rmsprop
