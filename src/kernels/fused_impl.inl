// The fused CPU kernel's body, compiled once per SIMD target: each fused_<target>.cpp defines
// RMSPROP_TARGET_NAMESPACE and includes this file, with that target's -m flags.
//
// The loop applies the same element kernel as the reference (apply.hpp); -O3 -fno-math-errno
// vectorizes it for the target (checked with -fopt-info-vec: see docs/kernels.md). Every
// element is independent and no operation is fused (NOTE: [no fused multiply-add]), so vector
// lanes, the scalar remainder and every thread count give the reference kernel's bits.
#include <cstddef>

#include "apply.hpp"
#include "fused_table.hpp"

namespace rmsprop::kernels::RMSPROP_TARGET_NAMESPACE {
namespace {

struct CodecTag {};  // this file's own out-of-line codec (NOTE: [8-bit codec out of line])
using Codec = OutOfLineCodec<CodecTag>;

// The 8-bit loop in whole blocks is compiled for AVX-512 only: the CPUs that run faster with
// it have AVX-512 (NOTE: [8-bit schedule by CPU]), and a second copy of every 8-bit loop made
// fused_avx512.cpp compile in 228 s instead of 158.
#if defined(__AVX512F__)
constexpr bool kWholeBlocks = true;
#else
constexpr bool kWholeBlocks = false;
#endif

template <Variant kV, Precision kP>
void fused_range(const TensorTask& task, std::size_t begin, std::size_t end) {
  using K = ElementKernel<kV, element_precision(kP)>;
  const auto c = Coefficients<typename K::C>::cast(task.coefficients);
  const std::uint32_t seed = task.rounding_seed;
  if constexpr (kP.state == DType::i8_block) {
    // 8-bit state: the same element loop over each block's float32 scratch
    state8_range<kV, kP, Codec, true, kWholeBlocks>(
        task, begin, end, state8_schedule(),
        [&](const typename K::Buffers& b, std::uint32_t count, std::uint32_t first, auto root) {
          constexpr bool kRoot = decltype(root)::value;
#pragma omp simd
          for (std::uint32_t k = 0; k < count; ++k) {
            K::template apply<kRoot>(b, k, first + k, c, seed);
          }
        });
    return;
  }
  const auto buffers = K::buffers(task);
  // A chunk is at most kChunkElements long, so a 32-bit counter walks it.
  const std::uint32_t count = std::uint32_t(end - begin), first = std::uint32_t(begin);
#pragma omp simd
  for (std::uint32_t k = 0; k < count; ++k) K::apply(buffers, begin + k, first + k, c, seed);
}

struct MakeFused {
  template <Variant kV, Precision kP>
  static constexpr RangeFn entry() {
    return &fused_range<kV, kP>;
  }
};

}  // namespace

const FusedTable& table() {
  static constexpr FusedTable kTable = make_precision_table<MakeFused>();
  return kTable;
}

}  // namespace rmsprop::kernels::RMSPROP_TARGET_NAMESPACE
