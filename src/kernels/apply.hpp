// One element of one step, for a variant and a precision: load and convert each buffer, apply
// the rule, convert and store. The reference loop and every fused loop call this, so they
// differ only in how they walk the elements.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "rmsprop/half.hpp"
#include "rmsprop/kernel.hpp"
#include "rmsprop/rule.hpp"
#include "state8.hpp"
#include "storage.hpp"
#include "variant_table.hpp"

namespace rmsprop::kernels {

template <DType>
struct StorageOf;
template <>
struct StorageOf<DType::f32> {
  using type = float;
};
template <>
struct StorageOf<DType::f64> {
  using type = double;
};
template <>
struct StorageOf<DType::bf16> {
  using type = bfloat16;
};
template <>
struct StorageOf<DType::f16> {
  using type = float16;
};

template <Variant kV, Precision kP>
struct ElementKernel {
  using P = typename StorageOf<kP.param>::type;
  using S = typename StorageOf<kP.state>::type;
  using C = typename Storage<P>::Compute;
  using PRaw = typename Storage<P>::Raw;
  using SRaw = typename Storage<S>::Raw;

  struct Buffers {
    PRaw* __restrict param;
    const PRaw* __restrict grad;
    SRaw* __restrict square_avg;
    SRaw* __restrict grad_avg;
    SRaw* __restrict momentum_buffer;
    float* __restrict master;
  };

  RMSPROP_HOST_DEVICE static Buffers buffers(const TensorTask& t) {
    return {static_cast<PRaw*>(t.param),           static_cast<const PRaw*>(t.grad),
            static_cast<SRaw*>(t.square_avg),      static_cast<SRaw*>(t.grad_avg),
            static_cast<SRaw*>(t.momentum_buffer), t.master};
  }

  // `element` is i as 32 bits, the stochastic-rounding counter (loops keep it as their own
  // induction variable: deriving it from a 64-bit i blocks vectorization). kStoreRoot: the
  // square_avg buffer receives the rule's sqrt(w), not v (8-bit state's scratch, below).
  template <bool kStoreRoot = false>
  RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE static void apply(const Buffers& b, std::size_t i,
                                                             std::uint32_t element,
                                                             const Coefficients<C>& c,
                                                             std::uint32_t seed) {
    Element<C> e{C(0), Storage<P>::load(b.grad[i]), C(0), C(0), C(0), C(0)};
    if constexpr (kP.master_weights) {
      e.param = b.master[i];
    } else {
      e.param = Storage<P>::load(b.param[i]);
    }
    if constexpr (kV.uses_square_avg()) e.square_avg = C(Storage<S>::load(b.square_avg[i]));
    if constexpr (kV.uses_grad_avg()) e.grad_avg = C(Storage<S>::load(b.grad_avg[i]));
    if constexpr (kV.uses_momentum_buffer()) {
      e.momentum_buffer = C(Storage<S>::load(b.momentum_buffer[i]));
    }
    update<kV>(e, c);
    if constexpr (kP.master_weights) b.master[i] = e.param;
    if constexpr (kP.stochastic_rounding) {
      b.param[i] = to_bfloat16_stochastic(e.param, rounding_bits(seed, element)).bits;
    } else {
      b.param[i] = Storage<P>::store(e.param);
    }
    if constexpr (kStoreRoot) {
      b.square_avg[i] = Storage<S>::store(e.root);
    } else if constexpr (kV.uses_square_avg()) {
      b.square_avg[i] = Storage<S>::store(e.square_avg);
    }
    if constexpr (kV.uses_grad_avg()) b.grad_avg[i] = Storage<S>::store(e.grad_avg);
    if constexpr (kV.uses_momentum_buffer()) {
      b.momentum_buffer[i] = Storage<S>::store(e.momentum_buffer);
    }
  }
};

// 8-bit state is computed as float32 state in scratch memory, block by block.
constexpr Precision element_precision(Precision p) {
  if (p.state == DType::i8_block) p.state = DType::f32;
  return p;
}

// NOTE: [8-bit encoder takes the rule's root]
// square_avg is stored as sqrt(v) (state8.hpp), and a square root is the codec's costliest
// operation (vsqrtps: ~45% of encoding a block, measured with perf). Where the rule's w is v bit
// for bit — not centered, eps outside the sqrt, and a square_avg correction of exactly 1 in the
// kernel's arithmetic type (w = v·1 is exact) — the rule has just computed sqrt(v) for its
// denominator, so the block's scratch receives that root and is encoded without taking it again:
// the same operation on the same bits, so the same codes (state8_test checks the 8-bit step
// against the float32 step between load_state and store_state). Bias correction makes the
// correction a runtime value, so this is a per-task choice between two loops, not a variant axis;
// only the variants where it can hold get the second loop (fused_avx512.cpp compiled in 100 s
// before, 107 s after).
template <Variant kV, class C>
inline constexpr bool kMayStoreRoot = kV.uses_square_avg() && !kV.centered && !kV.eps_in_sqrt
                                      && kV.numerator == Numerator::gradient
                                      && std::is_same_v<C, float>;

// NOTE: [8-bit pipeline]
// Alone, the rule's loop is bound by the divider (one division and one square root per
// element share it) and the codec by the other vector ports: run one after the other they
// took 0.44 + 0.25 ns per element on data in cache (perf, one thread). So the codec's work for
// the neighbouring blocks is interleaved with the rule's, in pieces small enough that the core
// overlaps them: while the rule runs over block k piece by piece, the codes of block k − 1
// (whose scale is known) and the decoding of block k + 1 go in between, into the other half of
// a double scratch. Each block's codes still depend only on its own values: the same bits as
// block after block (fused_kernel_test, state8_test). In cache this took the plain step from
// 0.68 to 0.55 ns per element; on 2^25 values it changed nothing until the pieces also
// prefetched their memory some blocks ahead (the float32 loop keeps enough loads in flight by
// itself; these short loops between codec calls do not): one thread, 1.0 → 0.78 ns per element
// against float32 state's 0.92 (measured 2026-12-05, docs/benchmarks.md "The rule's root, the
// pipeline and prefetching"; two blocks ahead for the values and four for the codes measured
// best of 1, 2, 4 and 8). The values' prefetch and the piece size are per-CPU choices (NOTE:
// [8-bit schedule by CPU], fused.cpp): on AMD EPYCs the prefetch made the step slower, and on
// Zen 5, whose divider leaves little to hide under, whole blocks are faster than pieces.
// Everything but the rule is OutOfLineCodec::Pass (state8.hpp), called out of line per piece
// (NOTE: [8-bit codec out of line]).

// The rule over elements [begin, end) of a task with 8-bit state (`begin` on a block
// boundary): each block's state decoded into float32 scratch, `loop(buffers, count, first,
// store_root)` runs the float32-state element kernel over `count` elements (from element
// `first`; store_root: a std::bool_constant, K::apply's kStoreRoot), and the scratch is encoded
// back, in the order of NOTE: [8-bit pipeline]. One read and one write of every buffer. `Codec`
// is the calling file's OutOfLineCodec (NOTE: [8-bit codec out of line]); kFused: a fused
// kernel's loop, which may be asked to store the rule's root and follows `schedule` (whether
// the parameters and gradients are prefetched ahead, and, where kWholeBlocks compiles that
// copy of the loop, the piece size: NOTE: [8-bit schedule by CPU]); the reference kernel's
// never stores the root and runs pieces of kState8Piece without prefetching.
template <Variant kV, Precision kP, class Codec, bool kFused, bool kWholeBlocks, class Loop>
RMSPROP_HOST_DEVICE RMSPROP_FORCE_INLINE void state8_range(const TensorTask& t, std::size_t begin,
                                                           std::size_t end,
                                                           const State8Schedule& schedule,
                                                           Loop loop) {
  using K = ElementKernel<kV, element_precision(kP)>;
  using C = typename K::C;
  if (begin >= end) return;  // an empty tensor has no block, not even a scale to read
  constexpr unsigned kBuffers = state8_buffers(kV);
  auto* param = static_cast<typename K::PRaw*>(t.param);
  const auto* grad = static_cast<const typename K::PRaw*>(t.grad);
  const bool prefetch_values = kFused && schedule.prefetch_values;
  // root: whether square_avg's scratch receives the rule's root; piece: the piece size, a
  // compile-time constant (a run-time size made pieces of 64 ~8% slower in cache)
  auto blocks = [&](auto root, auto piece) {
    constexpr std::size_t kPiece = decltype(piece)::value;
    static_assert(kState8Block % kPiece == 0, "a block is whole pieces");
    // the parameters and gradients of the piece at element i, two blocks ahead
    auto prefetch_piece = [&](std::size_t i) {
      if (!prefetch_values) return;
      constexpr std::size_t kLines = kPiece * sizeof(*param) / 64;
      const std::size_t value = i + 2 * kState8Block;
      for (std::size_t line = 0; line < kLines; ++line) {
        prefetch_line(param, value * sizeof(*param) + 64 * line);
        prefetch_line(grad, value * sizeof(*grad) + 64 * line);
        if constexpr (kP.master_weights) {  // float32: twice a 16-bit parameter's lines
          prefetch_line(t.master, value * 4 + 128 * line);
          prefetch_line(t.master, value * 4 + 128 * line + 64);
        }
      }
    };
    typename Codec::template Pass<kBuffers, decltype(root)::value> pass(t, begin, end);
    pass.decode(begin, 0, 0, pass.count_at(begin));
    int parity = 0;
    std::size_t start = begin;
    for (;; start += kState8Block, parity ^= 1) {
      const std::size_t count = pass.count_at(start), next = start + kState8Block;
      const bool pending = start > begin;  // the block before, whole, waits for its codes
      const std::size_t next_count = next < end ? pass.count_at(next) : 0;
      std::size_t p = 0;
      for (; p < count; p += kPiece) {
        const std::size_t n = count - p < kPiece ? count - p : kPiece;
        float* master = nullptr;
        if constexpr (kP.master_weights) master = t.master + start + p;
        const typename K::Buffers local{param + start + p,           grad + start + p,
                                        pass.scratch[parity][0] + p, pass.scratch[parity][1] + p,
                                        pass.scratch[parity][2] + p, master};
        prefetch_piece(start + p);
        pass.template prefetch_codes<kPiece>(start + p);
        loop(local, std::uint32_t(n), std::uint32_t(start + p), root);
        pass.template between<kPiece>(start, parity, p, pending, next_count);
      }
      pass.finish(start, parity, p, pending);
      if (next >= end) break;
    }
    pass.last(start, parity);
  };
  auto pieces = [&](auto root) {
    if constexpr (kFused && kWholeBlocks) {
      if (schedule.whole_blocks) {
        return blocks(root, std::integral_constant<std::size_t, kState8Block>{});
      }
    }
    blocks(root, std::integral_constant<std::size_t, kState8Piece>{});
  };
  if constexpr (kFused && kMayStoreRoot<kV, C>) {
    if (C(t.coefficients.sq_correction) == C(1)) return pieces(std::true_type{});
  }
  pieces(std::false_type{});
}

// Every supported Precision, generated from the axes (never a hand-kept list): 4 parameter
// dtypes, 5 state dtypes (the 4 and 8-bit), master weights, stochastic rounding.
inline constexpr std::size_t kNumPrecisionIndices = 4 * 5 * 2 * 2;

constexpr Precision precision_at(std::size_t index) {
  return {DType(index % 4), DType((index / 4) % 5), bool((index / 20) % 2), bool(index / 40)};
}

constexpr std::size_t index_of(const Precision& p) {
  return std::size_t(p.param) + 4 * std::size_t(p.state) + 20 * p.master_weights +
         40 * p.stochastic_rounding;
}

// A [precision][variant] table of `Make::template entry<variant, precision>()`, null where
// the precision is unsupported or the variant not canonical.
template <class Make>
using PrecisionEntry = decltype(Make::template entry<variant_at(0), Precision{}>());

template <class Make, std::size_t kPrecision, std::size_t... kVariant>
constexpr auto variant_row(std::index_sequence<kVariant...>) {
  using Entry = PrecisionEntry<Make>;
  if constexpr (precision_at(kPrecision).supported()) {
    return std::array<Entry, sizeof...(kVariant)>{[] {
      if constexpr (is_canonical(kVariant)) {
        return Make::template entry<variant_at(kVariant), precision_at(kPrecision)>();
      } else {
        return Entry{};
      }
    }()...};
  } else {
    return std::array<Entry, sizeof...(kVariant)>{};
  }
}

template <class Make, std::size_t... kPrecision>
constexpr auto make_precision_table(std::index_sequence<kPrecision...>) {
  return std::array{
      variant_row<Make, kPrecision>(std::make_index_sequence<kNumVariantIndices>{})...};
}

template <class Make>
constexpr auto make_precision_table() {
  return make_precision_table<Make>(std::make_index_sequence<kNumPrecisionIndices>{});
}

}  // namespace rmsprop::kernels
