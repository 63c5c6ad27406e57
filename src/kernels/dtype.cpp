// Storage types: element access, the precision check, the non-finite scans (names and sizes:
// rmsprop/dtype.hpp).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "dtype_dispatch.hpp"
#include "rmsprop/error.hpp"
#include "rmsprop/half.hpp"
#include "rmsprop/kernel.hpp"
#include "state8.hpp"
#include "storage.hpp"

namespace rmsprop {
namespace {

template <class F>
decltype(auto) with_storage(DType dtype, F f) {
  switch (dtype) {
    case DType::f64:
      return f(double{});
    case DType::bf16:
      return f(bfloat16{});
    case DType::f16:
      return f(float16{});
    case DType::f32:
      break;
    case DType::i8_block:  // blocks, not elements: load_state / store_state
      throw InvalidArgument("8-bit state has no element access");
  }
  return f(float{});
}

}  // namespace

void check_precision(const Precision& p) {
  if (p.supported()) return;
  throw InvalidArgument(
      "unsupported precision: parameters " + std::string(to_string(p.param)) + ", state " +
      std::string(to_string(p.state)) + (p.master_weights ? ", master weights" : "") +
      (p.stochastic_rounding ? ", stochastic rounding" : "") +
      " (float64 parameters need float64 state; float32 and 16-bit parameters take float32, "
      "bfloat16 or int8 state; master weights are for 16-bit parameters; stochastic rounding for "
      "bfloat16 parameters)");
}

double kernels::load_as_double(DType dtype, const void* data, std::size_t i) {
  return with_storage(dtype, [&](auto tag) {
    using S = kernels::Storage<decltype(tag)>;
    return double(S::load(static_cast<const typename S::Raw*>(data)[i]));
  });
}

void kernels::store_from_double(DType dtype, void* data, std::size_t i, double value) {
  with_storage(dtype, [&](auto tag) {
    using S = kernels::Storage<decltype(tag)>;
    static_cast<typename S::Raw*>(data)[i] = S::store(typename S::Compute(value));
  });
}

void kernels::load_state_range(DType dtype, bool square_avg, const void* data, std::size_t n,
                               std::size_t begin, std::span<double> out) {
  if (dtype != DType::i8_block) {
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = load_as_double(dtype, data, begin + i);
    return;
  }
  float block[kState8Block];
  for (std::size_t done = 0; done < out.size(); done += kState8Block) {
    const std::size_t count = std::min(kState8Block, out.size() - done);
    const State8Block at = state8_block(const_cast<void*>(data), n, (begin + done) / kState8Block);
    if (square_avg) {
      decode_block<State8Kind::square_avg>(at, count, block);
    } else {
      decode_block<State8Kind::signed_value>(at, count, block);
    }
    for (std::size_t i = 0; i < count; ++i) out[done + i] = block[i];
  }
}

void kernels::store_state_range(DType dtype, bool square_avg, void* data, std::size_t n,
                                std::size_t begin, std::span<const double> values) {
  if (dtype != DType::i8_block) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      store_from_double(dtype, data, begin + i, values[i]);
    }
    return;
  }
  float block[kState8Block];
  for (std::size_t done = 0; done < values.size(); done += kState8Block) {
    const std::size_t count = std::min(kState8Block, values.size() - done);
    for (std::size_t i = 0; i < count; ++i) block[i] = float(values[done + i]);
    const State8Block at = state8_block(data, n, (begin + done) / kState8Block);
    if (square_avg) {
      encode_block<State8Kind::square_avg>(at, count, block);
    } else {
      encode_block<State8Kind::signed_value>(at, count, block);
    }
  }
  // the bytes between the codes and the scales are the layout's padding: zero, so that equal
  // states are equal bytes (checkpoints compare and hash them)
  if (begin + values.size() == n) {
    auto* bytes = static_cast<unsigned char*>(data);
    for (std::size_t i = n; i < state8_scales_offset(n); ++i) bytes[i] = 0;
  }
}

std::vector<double> kernels::load_state(DType dtype, bool square_avg, const void* data,
                                        std::size_t n) {
  std::vector<double> out(n);
  load_state_range(dtype, square_avg, data, n, 0, out);
  return out;
}

void kernels::store_state(DType dtype, bool square_avg, void* data,
                          std::span<const double> values) {
  store_state_range(dtype, square_avg, data, values.size(), 0, values);
}

// Scans blocks of 4096 with a vectorizable test and looks for the exact element only in a
// block that has one: the check reads the gradients once more before a step, so it must run
// at memory speed.
namespace {

// Testing the bits as unsigned integers vectorizes (a floating-point test such as x − x == 0
// does not: GCC sees control flow, and 16-bit storage has no float vector type) and runs at
// memory speed.
template <DType kD>
bool find_non_finite_bits(const void* data, std::size_t size, std::size_t* index) {
  const auto* values = static_cast<const typename kernels::NonFiniteBits<kD>::Bits*>(data);
  constexpr std::size_t kBlock = 4096;
  for (std::size_t begin = 0; begin < size; begin += kBlock) {
    const std::size_t end = std::min(size, begin + kBlock);
    unsigned bad = 0;
    for (std::size_t i = begin; i < end; ++i) bad |= kernels::is_non_finite_bits<kD>(values[i]);
    if (!bad) continue;
    for (std::size_t i = begin; i < end; ++i) {
      if (kernels::is_non_finite_bits<kD>(values[i])) {
        if (index) *index = i;
        return true;
      }
    }
  }
  return false;
}

}  // namespace

bool find_non_finite(DType dtype, const void* data, std::size_t size, std::size_t* index) {
  return kernels::with_dtype(
      dtype, [&](auto d) { return find_non_finite_bits<decltype(d)::value>(data, size, index); });
}

std::optional<std::pair<std::size_t, std::size_t>> find_non_finite(
    std::span<const ConstBuffer> buffers, int threads) {
  struct Chunk {
    std::size_t buffer, begin, end;
  };
  std::vector<Chunk> chunks;
  for (std::size_t k = 0; k < buffers.size(); ++k) {
    for (std::size_t begin = 0; begin < buffers[k].size; begin += kChunkElements) {
      chunks.push_back({k, begin, std::min(buffers[k].size, begin + kChunkElements)});
    }
  }
  // Each chunk records whether it holds a bad value; the first such chunk (in list order) is
  // then searched exactly, so the answer does not depend on the thread count.
  std::vector<unsigned char> bad(chunks.size(), 0);
  const long n = long(chunks.size());
#if defined(_OPENMP)
  if (threads == 0) threads = omp_get_max_threads();
#endif
  if (threads < 1) threads = 1;
#pragma omp parallel for schedule(static) num_threads(threads) if (n > 4)
  for (long c = 0; c < n; ++c) {
    const Chunk& ch = chunks[std::size_t(c)];
    const ConstBuffer& b = buffers[ch.buffer];
    const auto* start = static_cast<const std::byte*>(b.data) + ch.begin * size_of(b.dtype);
    bad[std::size_t(c)] = find_non_finite(b.dtype, start, ch.end - ch.begin, nullptr);
  }
  for (std::size_t c = 0; c < chunks.size(); ++c) {
    if (!bad[c]) continue;
    const ConstBuffer& b = buffers[chunks[c].buffer];
    std::size_t at = 0;
    find_non_finite(b.dtype, b.data, b.size, &at);
    return std::make_pair(chunks[c].buffer, at);
  }
  return std::nullopt;
}

}  // namespace rmsprop
