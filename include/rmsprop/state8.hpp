// 8-bit optimizer state (state_dtype=int8, DType::i8_block): how a buffer of n state values
// is laid out in memory, the same for every front end, kernel and file.
//
// NOTE: [8-bit state] Each state buffer holds one 8-bit code per value, in blocks of
// kState8Block values that share one float32 scale:
//   bytes [0, n)                     the codes, value i's at byte i
//   bytes [scales_offset(n), ...)    one float32 scale per block (block b: values 256b..256b+255)
// Codes are the top bits of a float32 relative to the block's scale (src/kernels/state8.hpp):
// square_avg stores sqrt(v) with 4 exponent and 4 fraction bits, grad_avg and momentum_buffer
// sign + 3 exponent + 4 fraction bits; the choice and its measured errors are in
// docs/precision.md (bench/state8_codec_study.py). Blocks divide kChunkElements, so the
// threads of a step never share one.
#pragma once

#include <cstddef>

namespace rmsprop {

inline constexpr std::size_t kState8Block = 256;

constexpr std::size_t state8_blocks(std::size_t n) {
  return (n + kState8Block - 1) / kState8Block;
}
// Where the scales start: after the codes, rounded up so the floats are aligned.
constexpr std::size_t state8_scales_offset(std::size_t n) {
  return (n + 3) / 4 * 4;
}
constexpr std::size_t state8_bytes(std::size_t n) {
  return state8_scales_offset(n) + state8_blocks(n) * sizeof(float);
}

}  // namespace rmsprop
