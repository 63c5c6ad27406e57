// The 8-bit state codec in AVX2 intrinsics (NOTE: [8-bit codec in intrinsics] in
// state8.hpp, which includes this only where __AVX2__ is on).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace rmsprop::kernels {

// 8 lanes; codes packed to bytes 32 at a time.
struct Avx2Codec {
  static constexpr std::size_t kAbsmaxStep = 8, kEncodeStep = 32, kDecodeStep = 8;

  // The largest |x| of the finite values of x[0, n) as bits (n a multiple of kAbsmaxStep;
  // kSqrtFirst: x becomes sqrt(x) first).
  template <bool kSqrtFirst>
  RMSPROP_FORCE_INLINE static std::uint32_t finite_absmax_bits(float* x, std::size_t n) {
    const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF);
    __m256i m = _mm256_setzero_si256();
    for (std::size_t i = 0; i < n; i += 8) {
      __m256 v = _mm256_loadu_ps(x + i);
      if constexpr (kSqrtFirst) {
        v = _mm256_sqrt_ps(v);
        _mm256_storeu_ps(x + i, v);
      }
      const __m256i a = _mm256_and_si256(_mm256_castps_si256(v), abs_mask);
      const __m256i finite = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x7F800000), a);
      m = _mm256_max_epi32(m, _mm256_and_si256(a, finite));  // a ≥ 0 as int32
    }
    __m128i h = _mm_max_epi32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
    h = _mm_max_epi32(h, _mm_shuffle_epi32(h, 0x4E));
    h = _mm_max_epi32(h, _mm_shuffle_epi32(h, 0xB1));
    return std::uint32_t(_mm_cvtsi128_si32(h));
  }

  // Codes of 8 values, in the low byte of each 32-bit lane. `inverse` is 1/scale of a block
  // whose scale is > 0 (the caller handles a zero scale).
  template <class Code, bool kSigned>
  RMSPROP_FORCE_INLINE static __m256i encode8(const float* x, __m256 inverse) {
    const __m256i bits = _mm256_castps_si256(_mm256_loadu_ps(x));
    const __m256i abs = _mm256_and_si256(bits, _mm256_set1_epi32(0x7FFFFFFF));
    const __m256i nonfinite = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7F7FFFFF));
    const __m256i y = _mm256_castps_si256(_mm256_mul_ps(_mm256_castsi256_ps(abs), inverse));
    const __m256i field = _mm256_srli_epi32(
        _mm256_add_epi32(y, _mm256_set1_epi32(1 << (Code::kShift - 1))), Code::kShift);
    // field − offset, or 0 below it: one saturating subtraction of 16-bit halves (Avx512Codec)
    __m256i m = _mm256_subs_epu16(field, _mm256_set1_epi32(int(Code::kOffset)));
    m = _mm256_min_epu32(m, _mm256_set1_epi32(int(Code::kTop)));
    const __m256i zero = _mm256_setzero_si256();
    if constexpr (!kSigned) {
      // a nonzero value never reads back as 0; a non-finite one is 0xFF (m ≤ kTop = 0xFE)
      const __m256i nonzero =
          _mm256_andnot_si256(_mm256_cmpeq_epi32(y, zero), _mm256_set1_epi32(1));
      m = _mm256_max_epu32(m, nonzero);
      return _mm256_or_si256(m, _mm256_and_si256(nonfinite, _mm256_set1_epi32(0xFF)));
    } else {
      const __m256i sign = _mm256_andnot_si256(
          _mm256_cmpeq_epi32(m, zero),
          _mm256_and_si256(_mm256_srli_epi32(bits, 24), _mm256_set1_epi32(0x80)));
      const __m256i code = _mm256_or_si256(m, sign);
      return _mm256_or_si256(_mm256_andnot_si256(nonfinite, code),
                             _mm256_and_si256(nonfinite, _mm256_set1_epi32(int(Code::kNaN))));
    }
  }

  // Codes of x[0, n) into codes[0, n) (n a multiple of kEncodeStep).
  template <class Code, bool kSigned>
  RMSPROP_FORCE_INLINE static void encode(std::uint8_t* codes, const float* x, std::size_t n,
                                          float inverse) {
    const __m256 inv = _mm256_set1_ps(inverse);
    // packs work per 128-bit lane: this puts the 8 dwords of the packed bytes back in order
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (std::size_t i = 0; i < n; i += 32) {
      const __m256i a = encode8<Code, kSigned>(x + i, inv);
      const __m256i b = encode8<Code, kSigned>(x + i + 8, inv);
      const __m256i c = encode8<Code, kSigned>(x + i + 16, inv);
      const __m256i d = encode8<Code, kSigned>(x + i + 24, inv);
      const __m256i bytes =
          _mm256_packus_epi16(_mm256_packus_epi32(a, b), _mm256_packus_epi32(c, d));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(codes + i),
                          _mm256_permutevar8x32_epi32(bytes, order));
    }
  }

  // Values of codes[0, n) of a block with `scale` into out[0, n) (n a multiple of kDecodeStep;
  // kSquare: the square of the decoded value): Avx512Codec::decode's steps, with vector masks.
  template <class Code, bool kSigned, bool kSquare>
  RMSPROP_FORCE_INLINE static void decode(float* out, const std::uint8_t* codes, std::size_t n,
                                          float scale) {
    static_assert(!kSigned || (Code::kOffset & Code::kMagnitudeMask) == 0, "the offset is an OR");
    const __m256 s = _mm256_set1_ps(scale);
    const __m256 nan = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FC00000));
    const __m256i magnitude_mask = _mm256_set1_epi32(int(Code::kMagnitudeMask));
    const __m256i code_nan = _mm256_set1_epi32(kSigned ? -128 : int(Code::kNaN));
    const __m256i field = _mm256_set1_epi32(int(Code::kMagnitudeMask << Code::kShift));
    const __m256i offset = _mm256_set1_epi32(int(Code::kOffset << Code::kShift));
    const __m256i sign = _mm256_set1_epi32(int(0x80000000u));
    const __m256i zero = _mm256_setzero_si256();
    for (std::size_t i = 0; i < n; i += 8) {
      const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + i));
      const __m256i c = kSigned ? _mm256_cvtepi8_epi32(bytes) : _mm256_cvtepu8_epi32(bytes);
      // unsigned: the zero-extended code is its magnitude
      const __m256i magnitude = kSigned ? _mm256_and_si256(c, magnitude_mask) : c;
      const __m256i is_zero = _mm256_cmpeq_epi32(magnitude, zero);
      const __m256i shifted = _mm256_slli_epi32(c, Code::kShift);
      const __m256i unit = kSigned ? _mm256_or_si256(_mm256_and_si256(shifted, field), offset)
                                   : _mm256_add_epi32(shifted, offset);
      __m256 v = _mm256_mul_ps(_mm256_castsi256_ps(_mm256_andnot_si256(is_zero, unit)), s);
      if constexpr (kSigned) {
        v = _mm256_or_ps(v, _mm256_castsi256_ps(_mm256_and_si256(shifted, sign)));
      }
      v = _mm256_blendv_ps(v, nan, _mm256_castsi256_ps(_mm256_cmpeq_epi32(c, code_nan)));
      if constexpr (kSquare) v = _mm256_mul_ps(v, v);
      _mm256_storeu_ps(out + i, v);
    }
  }

  // Codes of a block whose scale is 0 (every finite value is 0): 0, or the NaN code for a
  // non-finite value.
  template <class Code>
  RMSPROP_FORCE_INLINE static void encode_zero_scale(std::uint8_t* codes, const float* x,
                                                     std::size_t n) {
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    auto one = [&](const float* p) {
      const __m256i abs =
          _mm256_and_si256(_mm256_castps_si256(_mm256_loadu_ps(p)), _mm256_set1_epi32(0x7FFFFFFF));
      return _mm256_and_si256(_mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7F7FFFFF)),
                              _mm256_set1_epi32(int(Code::kNaN)));
    };
    for (std::size_t i = 0; i < n; i += 32) {
      const __m256i bytes =
          _mm256_packus_epi16(_mm256_packus_epi32(one(x + i), one(x + i + 8)),
                              _mm256_packus_epi32(one(x + i + 16), one(x + i + 24)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(codes + i),
                          _mm256_permutevar8x32_epi32(bytes, order));
    }
  }
};

}  // namespace rmsprop::kernels
