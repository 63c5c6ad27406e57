// The 8-bit state codec (NOTE: [8-bit state] in rmsprop/state8.hpp): host-device, integer
// operations and correctly rounded float operations only, so every kernel gets the same bits.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "rmsprop/kernel.hpp"
#include "rmsprop/portability.hpp"
#include "rmsprop/state8.hpp"

// The translation units built for AVX2 or AVX-512 encode and decode with intrinsics (NOTE: [8-bit
// codec in intrinsics], below); the others, and CUDA, with the scalar codec, to the same bits.
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && !defined(__CUDACC__)
#include "state8_avx512.hpp"
#define RMSPROP_STATE8_VECTOR_CODEC Avx512Codec
#elif defined(__AVX2__) && !defined(__CUDACC__)
#include "state8_avx2.hpp"
#define RMSPROP_STATE8_VECTOR_CODEC Avx2Codec
#endif

namespace rmsprop::kernels {

static_assert(kChunkElements % kState8Block == 0, "a chunk is whole blocks");

// A code is the top bits of a float32 relative to its block's scale: for the magnitude,
// kExponentBits of exponent and kFractionBits of fraction, counted so that the largest code
// is the float 2 − 2^-kFractionBits; signed maps add a sign bit (bit 7). Code 0 is 0. One code
// means NaN (signed: "−0", 0x80; unsigned: 0xFF), so a non-finite value spoils only itself,
// not its block. Rounding is to nearest on the float's own bits (ties away from zero).
template <int kExponentBits, int kFractionBits, bool kSigned>
struct FloatCode {
  static_assert(kExponentBits + kFractionBits == (kSigned ? 7 : 8), "8 bits in all");
  static constexpr std::uint32_t kShift = 23 - kFractionBits;
  static constexpr std::uint32_t kMagnitudeMask = kSigned ? 0x7Fu : 0xFFu;
  static constexpr std::uint32_t kNaN = kSigned ? 0x80u : 0xFFu;
  static constexpr std::uint32_t kTop = kSigned ? 0x7Fu : 0xFEu;  // largest finite magnitude
  // field (exponent and fraction bits of the float) = code + kOffset
  static constexpr std::uint32_t kOffset =
      ((127u << kFractionBits) | ((1u << kFractionBits) - 1)) - kTop;
  static constexpr float kLargest = 2.0f - 1.0f / float(1u << kFractionBits);
  // the vector encoders subtract the offset from the field in 16-bit halves
  static_assert(kOffset < 0x10000u && (0xFFFFFFFFu >> kShift) < 0x10000u, "16-bit field");

  // The block's scale from the largest |x| of its finite values.
  RMSPROP_HOST_DEVICE static float scale_for(float absmax) { return absmax / kLargest; }

  // x relative to its block's scale, as |x| · (1/scale): `inverse` is 1/scale, computed once
  // per block (a multiply instead of a division per value: the encoder ran at half speed).
  RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE static std::uint8_t encode(float x, float scale,
                                                                      float inverse) {
    // Integer masks and selects on bits around the one product, used whatever the case (see
    // decode: a loop of these vectorizes). A zero scale (an all-zero or all-non-finite block)
    // makes every magnitude 0.
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
    const std::uint32_t finite = 0u - std::uint32_t((bits & 0x7F800000u) != 0x7F800000u);
    const float relative = std::bit_cast<float>(bits & 0x7FFFFFFFu) * inverse;
    const std::uint32_t y =
        std::bit_cast<std::uint32_t>(relative) & (0u - std::uint32_t(scale > 0.0f));
    const std::uint32_t field = (y + (1u << (kShift - 1))) >> kShift;
    std::uint32_t magnitude = field > kOffset ? field - kOffset : 0u;
    magnitude = magnitude < kTop ? magnitude : kTop;
    if constexpr (!kSigned) {
      // A nonzero value never reads back as 0: square_avg is a denominator, and rounding it
      // up (a smaller step) is the safe side.
      magnitude = ((magnitude == 0u) & (y != 0u)) ? 1u : magnitude;
    }
    std::uint32_t code = magnitude;
    if constexpr (kSigned) code = magnitude != 0u ? code | ((bits >> 24) & 0x80u) : 0u;
    return std::uint8_t((code & finite) | (kNaN & ~finite));
  }

  RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE static float decode(std::uint8_t code, float scale) {
    // Masks, not selects: GCC turns a select that discards a float product into a branch
    // around the product (a multiply may trap, so it is not speculated back), and a loop with
    // a branch does not vectorize. Code 0 makes a unit of 0 (0 × scale = 0); the NaN code
    // (0xFF unsigned, 0x80 signed) is NaN whatever the product.
    const std::uint32_t c = code;
    const std::uint32_t magnitude = c & kMagnitudeMask;
    const std::uint32_t nonzero = 0u - std::uint32_t(magnitude != 0u);
    const std::uint32_t nan = 0u - std::uint32_t(c == kNaN);
    const float unit = std::bit_cast<float>(((magnitude + kOffset) << kShift) & nonzero);
    std::uint32_t bits = std::bit_cast<std::uint32_t>(unit * scale);
    if constexpr (kSigned) bits |= (c & 0x80u) << 24;  // the sign
    return std::bit_cast<float>((bits & ~nan) | (0x7FC00000u & nan));
  }
};

// square_avg (v ≥ 0) is stored as sqrt(v), whose range is the square root of v's: the
// denominator's relative error is bounded by the fraction bits over a 2^-30 range of v.
using SquareAvgCode = FloatCode<4, 4, false>;
// grad_avg and momentum_buffer: 3 exponent bits (values down to 2^-7 of the scale; smaller
// ones read as 0) for 4 fraction bits, half the error of 4 + 3 where the update is made
// (measured: docs/precision.md).
using SignedCode = FloatCode<3, 4, true>;

// The largest |x| among the finite values of x[0, n): an integer max over the bit patterns
// (non-negative floats order as their bits), which vectorizes and needs no float compare;
// finite_abs_bits is one value's share (0 where x is not finite).
RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE std::uint32_t finite_abs_bits(float x) {
  // a mask, not a select, for the non-finite values: GCC then sees a max reduction
  const std::uint32_t a = std::bit_cast<std::uint32_t>(x) & 0x7FFFFFFFu;
  return a & (0u - std::uint32_t(a < 0x7F800000u));
}
RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE float finite_absmax(const float* x, std::size_t n) {
  std::uint32_t m = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t finite = finite_abs_bits(x[i]);
    m = finite > m ? finite : m;
  }
  return std::bit_cast<float>(m);
}

// Which codec a slot's buffer uses, and the value it stores (sqrt(v) for square_avg).
// square_root is square_avg's codec handed sqrt(v) itself, for encoding only (NOTE: [8-bit
// encoder takes the rule's root] in apply.hpp).
enum class State8Kind : std::uint8_t { square_avg, signed_value, square_root };

// The codec a kind encodes with.
template <State8Kind kKind>
using CodeOf = std::conditional_t<kKind == State8Kind::signed_value, SignedCode, SquareAvgCode>;

// One block of one 8-bit buffer: its codes, its scale.
struct State8Block {
  std::uint8_t* codes;
  float* scale;
};

// Block `block` of an 8-bit buffer of `n` values at `base` (NOTE: [8-bit state]).
RMSPROP_HOST_DEVICE inline State8Block state8_block(void* base, std::size_t n, std::size_t block) {
  auto* bytes = static_cast<std::uint8_t*>(base);
  return {bytes + block * kState8Block,
          reinterpret_cast<float*>(bytes + state8_scales_offset(n)) + block};
}

// The value a code of a block with `scale` stands for (square_avg: v, the square of its root).
template <State8Kind kKind>
RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE float decode_value(std::uint8_t code, float scale) {
  static_assert(kKind != State8Kind::square_root, "square_avg decodes to v");
  if constexpr (kKind == State8Kind::square_avg) {
    const float r = SquareAvgCode::decode(code, scale);
    return r * r;
  } else {
    return SignedCode::decode(code, scale);
  }
}

// Decodes `count` values of a block into `out` (square_avg: as v).
template <State8Kind kKind>
RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE void decode_block(const State8Block& b, std::size_t count,
                                                           float* out) {
  const float scale = *b.scale;
  // restrict locals (see encode_block)
  const std::uint8_t* __restrict__ const codes = b.codes;
  float* __restrict__ const to = out;
  std::size_t i = 0;
#if defined(RMSPROP_STATE8_VECTOR_CODEC)
  using Vector = RMSPROP_STATE8_VECTOR_CODEC;
  i = count / Vector::kDecodeStep * Vector::kDecodeStep;
  Vector::template decode<CodeOf<kKind>, kKind == State8Kind::signed_value,
                          kKind == State8Kind::square_avg>(to, codes, i, scale);
#endif
  for (; i < count; ++i) to[i] = decode_value<kKind>(codes[i], scale);
}

// NOTE: [8-bit codec in intrinsics]
// Encoding was the 8-bit step's bound: from the scalar FloatCode::encode GCC 12 made ~150
// instructions per 32 values (each mask narrowed to bytes separately, then byte blends) and
// one L1-resident block encoded slower than a whole float32-state step of its elements
// (bench/probes/ on branch state8-encoder-probe). Here every step stays in 32-bit lanes (AVX-512:
// masks in mask registers) and the codes are narrowed to bytes once per vector or four. The
// arithmetic is FloatCode::encode's, operation for operation (the same product, the same integer
// steps), so the codes are the same bits: the reference kernel, CUDA and checkpoints share them
// (tests/state8_vector_check.inl checks code for code on any bit pattern, fused_kernel_test kernel
// against reference).
// For decoding, GCC's vectorization of FloatCode::decode widened bytes in two steps (bytes to
// words to dwords, with extracts) and kept each mask in a vector: ~17 instructions per 16 signed
// values, where one sign-extending load, one shift and one ternary-logic op per 16 build the
// same bits (8 in all). Centered + momentum, which decodes three buffers, ran 11% faster in
// cache and 3-12% at 2^25 values with AVX-512 (docs/benchmarks.md).

// The multiplier that makes values relative to their block's `scale` (> 0). A scale below
// the smallest normal float (a block whose largest |x| is a denormal, below ~2^-125) has an
// infinite reciprocal, and every value, 0 included, would take the top code: such a block
// (rare, and the same in every kernel) is encoded from its values times 2^64, which is exact,
// against its scale times 2^64. The block still stores its true scale.
RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE float encoding_inverse(float scale, float* values,
                                                                std::size_t count) {
  constexpr float kSmallestNormal = 0x1p-126f, kLift = 0x1p64f;
  if (scale >= kSmallestNormal) return 1.0f / scale;
  for (std::size_t i = 0; i < count; ++i) values[i] *= kLift;
  return 1.0f / (scale * kLift);
}

// Encoding is two halves, so that a kernel can interleave the second with other work (NOTE:
// [8-bit pipeline] in apply.hpp): the block's scale from all its values, then the codes of any
// range of them.
struct EncodeScale {
  float scale;    // stored with the block
  float inverse;  // what values are multiplied by (encoding_inverse); unused for a zero scale
};

// A block's scale from the largest |x| of its finite values, and the multiplier its `count`
// values (here, or a share of them: each share gets the same multiplier) are encoded with;
// lifts them where encoding_inverse does.
template <State8Kind kKind>
RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE EncodeScale scale_from_absmax(float absmax, float* values,
                                                                       std::size_t count) {
  const float scale = CodeOf<kKind>::scale_for(absmax);
  // a zero scale (every finite value 0) needs no inverse: encode masks the product away
  return {scale, scale > 0.0f ? encoding_inverse(scale, values, count) : 0.0f};
}

// The first half with the scalar codec: square_avg's values (v) become sqrt(v) first, and a
// block with a denormal scale has its values lifted (encoding_inverse): `values` is overwritten.
template <State8Kind kKind>
RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE EncodeScale encode_scale_scalar(const State8Block& b,
                                                                         std::size_t count,
                                                                         float* values) {
  if constexpr (kKind == State8Kind::square_avg) {
    for (std::size_t i = 0; i < count; ++i) values[i] = detail::sqrt(values[i]);
  }
  const EncodeScale s = scale_from_absmax<kKind>(finite_absmax(values, count), values, count);
  *b.scale = s.scale;
  return s;
}

// The second half with the scalar codec: the codes of values [begin, end).
template <State8Kind kKind>
RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE void encode_codes_scalar(
    const State8Block& b, std::size_t begin, std::size_t end, const float* values, EncodeScale s) {
  using Code = CodeOf<kKind>;
  // restrict locals: a byte store may alias anything, b and values included (the compiler
  // would reload them every iteration, or check overlap at run time: measured 3.6x slower)
  std::uint8_t* __restrict__ const codes = b.codes;
  const float* __restrict__ const from = values;
  for (std::size_t i = begin; i < end; ++i) codes[i] = Code::encode(from[i], s.scale, s.inverse);
}

// Encodes `count` values into a block with the scalar codec (square_avg: `values` are v and get
// their sqrt first; `values` is overwritten): the codes every encoder must give.
template <State8Kind kKind>
RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE void encode_block_scalar(const State8Block& b,
                                                                  std::size_t count,
                                                                  float* values) {
  encode_codes_scalar<kKind>(b, 0, count, values, encode_scale_scalar<kKind>(b, count, values));
}

#ifdef RMSPROP_STATE8_VECTOR_CODEC
// encode_scale_scalar's scale and values, with intrinsics for whole vectors.
template <State8Kind kKind>
RMSPROP_FORCE_INLINE EncodeScale encode_scale_vector(const State8Block& b, std::size_t count,
                                                     float* values) {
  constexpr bool kSqrtFirst = kKind == State8Kind::square_avg;
  using Vector = RMSPROP_STATE8_VECTOR_CODEC;
  const std::size_t whole = count / Vector::kAbsmaxStep * Vector::kAbsmaxStep;
  const std::uint32_t vector_max = Vector::template finite_absmax_bits<kSqrtFirst>(values, whole);
  if constexpr (kSqrtFirst) {
    for (std::size_t i = whole; i < count; ++i) values[i] = detail::sqrt(values[i]);
  }
  const auto tail_max = std::bit_cast<std::uint32_t>(finite_absmax(values + whole, count - whole));
  const EncodeScale s = scale_from_absmax<kKind>(
      std::bit_cast<float>(vector_max > tail_max ? vector_max : tail_max), values, count);
  *b.scale = s.scale;
  return s;
}

// encode_codes_scalar's codes, with intrinsics for whole vectors and the scalar codec for the
// tail.
template <State8Kind kKind>
RMSPROP_FORCE_INLINE void encode_codes_vector(const State8Block& b, std::size_t begin,
                                              std::size_t end, const float* values, EncodeScale s) {
  constexpr bool kSigned = kKind == State8Kind::signed_value;
  using Code = CodeOf<kKind>;
  using Vector = RMSPROP_STATE8_VECTOR_CODEC;
  const std::size_t whole = (end - begin) / Vector::kEncodeStep * Vector::kEncodeStep;
  if (s.scale > 0.0f) {
    Vector::template encode<Code, kSigned>(b.codes + begin, values + begin, whole, s.inverse);
  } else {
    Vector::template encode_zero_scale<Code>(b.codes + begin, values + begin, whole);
  }
  encode_codes_scalar<kKind>(b, begin + whole, end, values, s);
}
#endif

// The two halves of encoding (square_avg: `values` are v and get their sqrt first; `values` is
// overwritten), with intrinsics where this file is built for them, else the scalar codec, to
// the same bits.
template <State8Kind kKind>
RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE EncodeScale encode_scale(const State8Block& b,
                                                                  std::size_t count,
                                                                  float* values) {
#ifdef RMSPROP_STATE8_VECTOR_CODEC
  return encode_scale_vector<kKind>(b, count, values);
#else
  return encode_scale_scalar<kKind>(b, count, values);
#endif
}
template <State8Kind kKind>
RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE void encode_codes(const State8Block& b, std::size_t begin,
                                                           std::size_t end, const float* values,
                                                           EncodeScale s) {
#ifdef RMSPROP_STATE8_VECTOR_CODEC
  encode_codes_vector<kKind>(b, begin, end, values, s);
#else
  encode_codes_scalar<kKind>(b, begin, end, values, s);
#endif
}

// Encodes `count` values into a block: both halves.
template <State8Kind kKind>
RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE void encode_block(const State8Block& b, std::size_t count,
                                                           float* values) {
  encode_codes<kKind>(b, 0, count, values, encode_scale<kKind>(b, count, values));
}

// Asks for the cache line at `byte` from `base` into L2 (a prefetch never faults, so the line
// may lie past the buffer, near its end: the address is made as an integer, never as a pointer
// past an object). Inline assembly, not __builtin_prefetch: GCC 12 dropped those from the 8-bit
// kernel whenever one stood alone under a condition, in a fold, or in a loop it could vectorize
// (the disassembly had no prefetch left; check it for prefetcht1 after changing the loop).
RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE void prefetch_line(const void* base, std::size_t byte) {
#if defined(__CUDA_ARCH__)
  (void)base, (void)byte;
#elif defined(__x86_64__)
  asm volatile("prefetcht1 (%0)" : : "r"(reinterpret_cast<std::uintptr_t>(base) + byte));
#else
  __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(base) + byte),
                     1, 2);
#endif
}

// The 8-bit buffers of a variant, as bits (a pass's kBuffers).
inline constexpr unsigned kState8SquareAvg = 1, kState8GradAvg = 2, kState8Momentum = 4;

constexpr unsigned state8_buffers(const Variant& v) {
  return (v.uses_square_avg() ? kState8SquareAvg : 0u) | (v.uses_grad_avg() ? kState8GradAvg : 0u) |
         (v.uses_momentum_buffer() ? kState8Momentum : 0u);
}

// f(the codec kind it is encoded with, its index, its memory) for each 8-bit buffer in kBuffers
// of a task (a TensorTask, or the CUDA kernel's slot of one): square_avg, grad_avg,
// momentum_buffer; square_avg's kind is kSquare (square_root where its values are roots).
template <unsigned kBuffers, State8Kind kSquare, class Task, class F>
RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE void each_state8_buffer(const Task& t, F&& f) {
  using Square = std::integral_constant<State8Kind, kSquare>;
  using Signed = std::integral_constant<State8Kind, State8Kind::signed_value>;
  if constexpr ((kBuffers & kState8SquareAvg) != 0) f(Square{}, 0, t.square_avg);
  if constexpr ((kBuffers & kState8GradAvg) != 0) f(Signed{}, 1, t.grad_avg);
  if constexpr ((kBuffers & kState8Momentum) != 0) f(Signed{}, 2, t.momentum_buffer);
}

// Pieces of a block the rule runs over between the codec's work (NOTE: [8-bit pipeline] in
// apply.hpp): the reference kernel's and most CPUs' size (NOTE: [8-bit schedule by CPU]).
inline constexpr std::size_t kState8Piece = 64;
static_assert(kState8Block % kState8Piece == 0, "a block is whole pieces");

// How a fused 8-bit loop is scheduled on the CPU it runs on (NOTE: [8-bit schedule by CPU],
// fused.cpp). Every schedule gives the same bits: each block's codes depend only on its values.
struct State8Schedule {
  bool whole_blocks = false;     // pieces of kState8Block, not kState8Piece
  bool prefetch_values = false;  // the parameters' and gradients' lines two blocks ahead
};

// NOTE: [8-bit codec out of line]
// The codec is the same for every variant, so a kernel file calls it out of line: inlined into
// each of the 735 8-bit (variant, precision) instantiations it made a kernel file compile 3.5x
// as long (measured: fused_avx2.cpp 62 s -> 213 s), which CI pays in every build tree. So is
// the pipeline's bookkeeping around it (which blocks and pieces, which buffers): inlined, it
// made the ASan build's kernel files compile for over 13 minutes each. A Pass holds one task's
// scratch and does all of an 8-bit step but the rule, in calls per piece of a block; it is
// instantiated per set of buffers, not per variant. Each translation unit instantiates it with
// a tag type of its own (internal linkage): the SIMD files are compiled with different -m
// flags, and one shared out-of-line copy could run AVX-512 code on a CPU without it.
template <class Tag>
struct OutOfLineCodec {
  // kBuffers: the kState8… bits of the variant; kRoot: square_avg's scratch receives the rule's
  // sqrt(v), not v (NOTE: [8-bit encoder takes the rule's root]).
  template <unsigned kBuffers, bool kRoot>
  struct Pass {
    const TensorTask& t;
    std::size_t begin, end;
    // [block parity][buffer]: square_avg, grad_avg, momentum_buffer (left uninitialized)
    alignas(64) float scratch[2][3][kState8Block];
    EncodeScale scales[3]{};  // of the block whose codes are pending

    Pass(const TensorTask& task, std::size_t first, std::size_t last)
        : t(task), begin(first), end(last) {}

    std::size_t count_at(std::size_t start) const {
      return end - start < kState8Block ? end - start : kState8Block;
    }
    // f(the codec kind it is encoded with, its scratch slot, its memory) for each 8-bit buffer
    template <class F>
    RMSPROP_FORCE_INLINE void each(F&& f) const {
      each_state8_buffer<kBuffers, kRoot ? State8Kind::square_root : State8Kind::square_avg>(t, f);
    }
    // values [from, to) of the block at `start`, into scratch[parity]
    [[gnu::noinline]] void decode(std::size_t start, int parity, std::size_t from, std::size_t to) {
      each([&](auto kind, int slot, void* base) {
        constexpr State8Kind kKind = decltype(kind)::value == State8Kind::square_root
                                         ? State8Kind::square_avg
                                         : decltype(kind)::value;  // decodes to v
        const State8Block b = state8_block(base, t.size, start / kState8Block);
        decode_block<kKind>({b.codes + from, b.scale}, to - from, scratch[parity][slot] + from);
      });
    }
    RMSPROP_FORCE_INLINE void codes(std::size_t start, int parity, std::size_t from,
                                    std::size_t to) {
      each([&](auto kind, int slot, void* base) {
        encode_codes<decltype(kind)::value>(state8_block(base, t.size, start / kState8Block), from,
                                            to, scratch[parity][slot], scales[slot]);
      });
    }
    // After the rule's piece [p, p + kPiece) of the block at `start`: the same positions of
    // the other half, first read (the pending block's codes), then overwritten (the next block's
    // values).
    template <std::size_t kPiece>
    [[gnu::noinline]] void between(std::size_t start, int parity, std::size_t p, bool pending,
                                   std::size_t next_count) {
      if (pending) codes(start - kState8Block, parity ^ 1, p, p + kPiece);
      if (p < next_count) {
        decode(start + kState8Block, parity ^ 1, p,
               p + kPiece < next_count ? p + kPiece : next_count);
      }
    }
    // After the rule's last piece of the block at `start` (`p` past it): the rest of the pending
    // block (a short block, the last, leaves some), then this block's scales.
    [[gnu::noinline]] void finish(std::size_t start, int parity, std::size_t p, bool pending) {
      if (pending && p < kState8Block) codes(start - kState8Block, parity ^ 1, p, kState8Block);
      each([&](auto kind, int slot, void* base) {
        scales[slot] =
            encode_scale<decltype(kind)::value>(state8_block(base, t.size, start / kState8Block),
                                                count_at(start), scratch[parity][slot]);
      });
    }
    // The last block's codes.
    [[gnu::noinline]] void last(std::size_t start, int parity) {
      codes(start, parity, 0, count_at(start));
    }
    // The codes of the piece [i, i + kPiece), some blocks ahead.
    template <std::size_t kPiece>
    RMSPROP_FORCE_INLINE void prefetch_codes(std::size_t i) const {
      for (std::size_t line = 0; line < kPiece; line += 64) {
        each([&](auto, int, void* base) { prefetch_line(base, i + line + 4 * kState8Block); });
      }
    }
  };
};

}  // namespace rmsprop::kernels
