// The intrinsics codec a file is built for (NOTE: [8-bit codec in intrinsics]) against the
// scalar codec: its encoder against encode_block_scalar, code for code and scale for scale, on
// blocks of any bit pattern; its decoder against decode_value, bit for bit, on any codes and
// scales. Included by state8_check_<target>.cpp, each built with its target's flags
// (tests/CMakeLists.txt) and called by state8_test only where the CPU has that target. No test
// framework in here, so nothing of these files runs before the CPU is checked.
//
// The including file defines RMSPROP_CHECKED_CODEC (the encoder it must get) and
// RMSPROP_CHECK_FUNCTION (the name of the function below).
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/state8.hpp"
#include "test_util.hpp"

static_assert(std::is_same_v<rmsprop::kernels::RMSPROP_STATE8_VECTOR_CODEC,
                             rmsprop::kernels::RMSPROP_CHECKED_CODEC>,
              "built without the flags of the encoder it checks");

namespace rmsprop::testing {
namespace {

using kernels::State8Kind;

// One block of `count` values of one of several kinds, from `rng`.
void fill(SplitMix64& rng, float* v, std::size_t count, bool non_negative) {
  const std::uint64_t kind = rng.next() % 8;
  const float base = std::ldexp(1.0f, int(rng.next() % 260) - 150);  // denormal to huge
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint64_t r = rng.next();
    const auto bits = std::uint32_t(r);
    float x;
    if (kind == 0) {
      x = std::bit_cast<float>(bits);  // any bits: NaN, inf, denormals, zeros of both signs
    } else if (kind == 1) {
      x = (r >> 40) % 2 ? 0.0f : -0.0f;  // a zero block (scale 0)
    } else if (kind == 2) {
      x = std::bit_cast<float>(bits & 0x807FFFFFu);  // denormals and zeros: a tiny scale
    } else if (kind == 3) {
      x = (r >> 40) % 3 ? std::bit_cast<float>(0x7F800000u | (bits & 0x80000001u)) : 0.0f;
    } else {  // values around `base`, some far below it, some exactly 0, a few non-finite
      x = base * float(std::int64_t(bits % 2000001u) - 1000000) * 1e-6f;
      if ((r >> 40) % 97 == 0) x *= 1e-6f;
      if ((r >> 40) % 89 == 0) x = 0.0f;
      if (kind == 4 && (r >> 40) % 50 == 0) x = (r >> 50) % 3 ? INFINITY : NAN;
    }
    v[i] = non_negative && kind >= 3 ? std::fabs(x) : x;
  }
}

template <State8Kind kKind>
bool block_matches(SplitMix64& rng, std::size_t count) {
  alignas(64) float values[kState8Block], expected_values[kState8Block];
  fill(rng, values, count, kKind != State8Kind::signed_value);
  std::memcpy(expected_values, values, count * sizeof(float));
  std::uint8_t expected[kState8Block], codes[kState8Block + 1];
  float expected_scale = -1.0f, scale = -1.0f;
  kernels::encode_block_scalar<kKind>({expected, &expected_scale}, count, expected_values);
  codes[count] = 0xA5;  // the encoder writes no further
  // in two halves, the codes in two ranges split anywhere (NOTE: [8-bit pipeline])
  const kernels::State8Block block{codes, &scale};
  const kernels::EncodeScale s = kernels::encode_scale<kKind>(block, count, values);
  const std::size_t split = rng.next() % (count + 1);
  kernels::encode_codes<kKind>(block, 0, split, values, s);
  kernels::encode_codes<kKind>(block, split, count, values, s);
  return std::bit_cast<std::uint32_t>(scale) == std::bit_cast<std::uint32_t>(expected_scale) &&
         std::memcmp(codes, expected, count) == 0 && codes[count] == 0xA5 &&
         std::memcmp(values, expected_values, count * sizeof(float)) == 0;
}

// A scale of one of several kinds: any bits (NaN, inf, negative: never stored by the encoder,
// but a decoder still gives the scalar codec's bits for them), 0, a denormal, a typical one.
float any_scale(SplitMix64& rng) {
  const std::uint64_t r = rng.next();
  switch (r % 4) {
    case 0:
      return std::bit_cast<float>(std::uint32_t(r >> 32));
    case 1:
      return 0.0f;
    case 2:
      return std::bit_cast<float>(std::uint32_t(r >> 32) & 0x007FFFFFu);
    default:
      return std::ldexp(1.0f + float((r >> 32) % 1000) * 1e-3f, int((r >> 8) % 60) - 40);
  }
}

template <State8Kind kKind>
bool decode_matches(SplitMix64& rng, std::size_t count) {
  std::uint8_t codes[kState8Block];
  for (std::size_t i = 0; i < count; ++i) codes[i] = std::uint8_t(rng.next());
  if (count > 2) codes[0] = 0, codes[1] = std::uint8_t(kernels::CodeOf<kKind>::kNaN);
  float scale = any_scale(rng);
  alignas(64) float values[kState8Block + 1];
  values[count] = 1.5f;  // the decoder writes no further
  kernels::decode_block<kKind>({codes, &scale}, count, values);
  for (std::size_t i = 0; i < count; ++i) {
    const float expected = kernels::decode_value<kKind>(codes[i], scale);
    if (std::bit_cast<std::uint32_t>(values[i]) != std::bit_cast<std::uint32_t>(expected)) {
      return false;
    }
  }
  return values[count] == 1.5f;
}

}  // namespace

// Blocks that differ from the scalar codec in any code, the scale, the written values, a decoded
// value or a byte past the block, of `blocks` per map, every size 1..kState8Block in turn.
std::size_t RMSPROP_CHECK_FUNCTION(std::uint64_t seed, std::size_t blocks) {
  SplitMix64 rng(seed);
  std::size_t bad = 0;
  for (std::size_t k = 0; k < blocks; ++k) {
    const std::size_t count = k % 2 ? kState8Block : 1 + k / 2 % kState8Block;
    bad += !block_matches<State8Kind::square_avg>(rng, count);
    bad += !block_matches<State8Kind::square_root>(rng, count);
    bad += !block_matches<State8Kind::signed_value>(rng, count);
    bad += !decode_matches<State8Kind::square_avg>(rng, count);
    bad += !decode_matches<State8Kind::signed_value>(rng, count);
  }
  return bad;
}

}  // namespace rmsprop::testing
