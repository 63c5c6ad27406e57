// The 8-bit state codec in AVX-512 intrinsics (NOTE: [8-bit codec in intrinsics] in
// state8.hpp, which includes this only where __AVX512F__, __AVX512BW__ and __AVX512DQ__ are on).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace rmsprop::kernels {

// 16 lanes; each mask a mask register; codes narrowed to bytes 16 at a time (vpmovdb).
//
// GCC 12's unmasked forms of several intrinsics (srli, max/min_epu32, sqrt, cvtepi32_epi8,
// cvtepi8/epu8_epi32, reduce_max) start from an undefined vector and warn -Wuninitialized once
// inlined; the masked forms with every lane on are the same instructions.
struct Avx512Codec {
  static constexpr std::size_t kAbsmaxStep = 16, kEncodeStep = 16, kDecodeStep = 16;
  static constexpr __mmask16 kAll = 0xFFFF;
  static constexpr __mmask32 kAll32 = 0xFFFFFFFF;  // 16-bit lanes

  // The largest |x| of the finite values of x[0, n) as bits (n a multiple of kAbsmaxStep;
  // kSqrtFirst: x becomes sqrt(x) first).
  template <bool kSqrtFirst>
  RMSPROP_FORCE_INLINE static std::uint32_t finite_absmax_bits(float* x, std::size_t n) {
    const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF);
    const __m512i infinity = _mm512_set1_epi32(0x7F800000);
    __m512i m = _mm512_setzero_si512();
    for (std::size_t i = 0; i < n; i += 16) {
      __m512 v = _mm512_loadu_ps(x + i);
      if constexpr (kSqrtFirst) {
        v = _mm512_mask_sqrt_ps(v, kAll, v);
        _mm512_storeu_ps(x + i, v);
      }
      const __m512i a = _mm512_and_si512(_mm512_castps_si512(v), abs_mask);
      m = _mm512_mask_max_epi32(m, _mm512_cmplt_epi32_mask(a, infinity), m, a);  // a ≥ 0
    }
    alignas(64) std::uint32_t lanes[16];
    _mm512_store_si512(lanes, m);
    std::uint32_t largest = 0;
    for (const std::uint32_t lane : lanes) largest = lane > largest ? lane : largest;
    return largest;
  }

  // Codes of x[0, n) into codes[0, n) (n a multiple of kEncodeStep). `inverse` is 1/scale of
  // a block whose scale is > 0 (encode_zero_scale is the other case).
  template <class Code, bool kSigned>
  RMSPROP_FORCE_INLINE static void encode(std::uint8_t* codes, const float* x, std::size_t n,
                                          float inverse) {
    const __m512 inv = _mm512_set1_ps(inverse);
    const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF);
    const __m512i largest_finite = _mm512_set1_epi32(0x7F7FFFFF);
    const __m512i half = _mm512_set1_epi32(1 << (Code::kShift - 1));
    const __m512i offset = _mm512_set1_epi32(int(Code::kOffset));
    const __m512i top = _mm512_set1_epi32(int(Code::kTop));
    const __m512i nan = _mm512_set1_epi32(int(Code::kNaN));
    const __m512i one = _mm512_set1_epi32(1), sign = _mm512_set1_epi32(0x80);
    for (std::size_t i = 0; i < n; i += 16) {
      const __m512i bits = _mm512_loadu_si512(x + i);
      const __m512i abs = _mm512_and_si512(bits, abs_mask);
      const __mmask16 finite = _mm512_cmple_epi32_mask(abs, largest_finite);
      const __m512i y = _mm512_castps_si512(_mm512_mul_ps(_mm512_castsi512_ps(abs), inv));
      const __m512i rounded = _mm512_add_epi32(y, half);
      const __m512i field = _mm512_mask_srli_epi32(rounded, kAll, rounded, Code::kShift);
      // field − offset, or 0 below it, in one saturating subtraction of 16-bit halves (the upper
      // halves are 0 − 0)
      __m512i m = _mm512_mask_subs_epu16(field, kAll32, field, offset);
      // a nonzero value never reads back as 0 (top ≥ 1: before or after the clamp is the same)
      if constexpr (!kSigned) m = _mm512_mask_max_epu32(m, _mm512_test_epi32_mask(y, y), m, one);
      m = _mm512_mask_min_epu32(nan, finite, m, top);  // a non-finite value: the NaN code
      if constexpr (kSigned) {
        // the sign of x on a nonzero magnitude (the NaN code 0x80 keeps its bit)
        const __mmask16 negative = _mm512_movepi32_mask(bits);
        m = _mm512_mask_or_epi32(m, _mm512_mask_test_epi32_mask(negative, m, m), m, sign);
      }
      _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + i), _mm512_maskz_cvtepi32_epi8(kAll, m));
    }
  }

  // Values of codes[0, n) of a block with `scale` into out[0, n) (n a multiple of kDecodeStep;
  // kSquare: the value is the square of the decoded one, square_avg's v): FloatCode::decode's
  // operations, with the code's bits moved in one shift. The signed map's magnitude plus kOffset
  // is an OR (kOffset has no bit under the magnitude's 7), so a sign-extended code shifted into
  // place needs only its sign bits replaced by the offset's; the sign is ORed onto the product,
  // as in the scalar decode (a select would differ where the product has a sign of its own: a
  // negative or NaN scale, which only a damaged checkpoint holds).
  template <class Code, bool kSigned, bool kSquare>
  RMSPROP_FORCE_INLINE static void decode(float* out, const std::uint8_t* codes, std::size_t n,
                                          float scale) {
    static_assert(!kSigned || (Code::kOffset & Code::kMagnitudeMask) == 0, "the offset is an OR");
    const __m512 s = _mm512_set1_ps(scale);
    const __m512 nan = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FC00000));
    const __m512i magnitude_mask = _mm512_set1_epi32(int(Code::kMagnitudeMask));
    const __m512i code_nan = _mm512_set1_epi32(kSigned ? -128 : int(Code::kNaN));
    const __m512i field = _mm512_set1_epi32(int(Code::kMagnitudeMask << Code::kShift));
    const __m512i offset = _mm512_set1_epi32(int(Code::kOffset << Code::kShift));
    const __m512i sign = _mm512_set1_epi32(int(0x80000000u));
    for (std::size_t i = 0; i < n; i += 16) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + i));
      // signed: bits 8.. copies of the sign, so the shifted code has it in bit 31
      const __m512i c = kSigned ? _mm512_maskz_cvtepi8_epi32(kAll, bytes)
                                : _mm512_maskz_cvtepu8_epi32(kAll, bytes);
      const __mmask16 nonzero = _mm512_test_epi32_mask(c, magnitude_mask);
      const __mmask16 finite = _mm512_cmpneq_epi32_mask(c, code_nan);
      const __m512i shifted = _mm512_mask_slli_epi32(c, kAll, c, Code::kShift);
      __m512i unit;
      if constexpr (kSigned) {
        unit = _mm512_maskz_ternarylogic_epi32(nonzero, shifted, field, offset, 0xEA);  // a&b | c
      } else {
        unit = _mm512_maskz_add_epi32(nonzero, shifted, offset);
      }
      __m512 v = _mm512_mask_mul_ps(nan, finite, _mm512_castsi512_ps(unit), s);
      if constexpr (kSigned) {
        // the product OR the shifted code's bit 31 (0xF8: a | (b & c))
        v = _mm512_castsi512_ps(
            _mm512_mask_ternarylogic_epi32(_mm512_castps_si512(v), finite, sign, shifted, 0xF8));
      }
      if constexpr (kSquare) v = _mm512_mul_ps(v, v);
      _mm512_storeu_ps(out + i, v);
    }
  }

  // Codes of a block whose scale is 0 (every finite value is 0): 0, or the NaN code for a
  // non-finite value.
  template <class Code>
  RMSPROP_FORCE_INLINE static void encode_zero_scale(std::uint8_t* codes, const float* x,
                                                     std::size_t n) {
    for (std::size_t i = 0; i < n; i += 16) {
      const __m512i abs =
          _mm512_and_si512(_mm512_loadu_si512(x + i), _mm512_set1_epi32(0x7FFFFFFF));
      const __mmask16 nonfinite = _mm512_cmpgt_epi32_mask(abs, _mm512_set1_epi32(0x7F7FFFFF));
      _mm512_mask_cvtepi32_storeu_epi8(
          codes + i, kAll, _mm512_maskz_mov_epi32(nonfinite, _mm512_set1_epi32(int(Code::kNaN))));
    }
  }
};

}  // namespace rmsprop::kernels
