// The 8-bit state encoder in AVX-512 intrinsics (NOTE: [8-bit encoder in intrinsics] in
// state8.hpp, which includes this only where __AVX512F__ and __AVX512BW__ are on).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace rmsprop::kernels {

// 16 lanes; each mask a mask register; codes narrowed to bytes 16 at a time (vpmovdb).
//
// GCC 12's unmasked forms of several intrinsics (srli, max/min_epu32, sqrt, cvtepi32_epi8,
// reduce_max) start from an undefined vector and warn -Wuninitialized once inlined; the masked
// forms with every lane on are the same instructions.
struct Avx512Encoder {
  static constexpr std::size_t kAbsmaxStep = 16, kEncodeStep = 16;
  static constexpr __mmask16 kAll = 0xFFFF;

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
    for (std::size_t i = 0; i < n; i += 16) {
      const __m512i bits = _mm512_loadu_si512(x + i);
      const __m512i abs = _mm512_and_si512(bits, abs_mask);
      const __mmask16 nonfinite = _mm512_cmpgt_epi32_mask(abs, largest_finite);
      const __m512i y = _mm512_castps_si512(_mm512_mul_ps(_mm512_castsi512_ps(abs), inv));
      const __m512i rounded = _mm512_add_epi32(y, half);
      const __m512i field = _mm512_mask_srli_epi32(rounded, kAll, rounded, Code::kShift);
      __m512i m = _mm512_sub_epi32(_mm512_mask_max_epu32(field, kAll, field, offset), offset);
      m = _mm512_mask_min_epu32(m, kAll, m, top);
      if constexpr (!kSigned) {
        // a nonzero value never reads back as 0
        m = _mm512_mask_max_epu32(m, _mm512_test_epi32_mask(y, y), m, _mm512_set1_epi32(1));
      } else {
        const __m512i sign =
            _mm512_and_si512(_mm512_mask_srli_epi32(bits, kAll, bits, 24), _mm512_set1_epi32(0x80));
        m = _mm512_mask_or_epi32(m, _mm512_test_epi32_mask(m, m), m, sign);
      }
      m = _mm512_mask_mov_epi32(m, nonfinite, nan);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + i), _mm512_maskz_cvtepi32_epi8(kAll, m));
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
