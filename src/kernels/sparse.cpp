// Row gradients: coalesce, then one fused call over the touched rows (lazy) or over the whole
// tensor with a shared zero gradient for untouched stretches (dense).
#include "rmsprop/sparse.hpp"

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "rmsprop/error.hpp"
#include "storage.hpp"

namespace rmsprop {
namespace {

struct Coalesced {
  std::vector<std::size_t> rows;      // sorted, unique
  std::vector<unsigned char> values;  // rows.size() × row_size, param dtype
};

Coalesced coalesce(const SparseParam& p, const RowGradient& g) {
  const std::size_t n = g.indices.size();
  for (std::size_t k = 0; k < n; ++k) {
    const std::int64_t r = g.indices[k];
    if (r < 0 || std::uint64_t(r) >= p.rows) {
      throw InvalidArgument("sparse gradient: index " + std::to_string(r) + " at position " +
                            std::to_string(k) + " is outside the parameter's " +
                            std::to_string(p.rows) + " rows");
    }
  }
  if (n > 0 && g.values == nullptr) throw InvalidArgument("sparse gradient: values are null");
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return g.indices[a] < g.indices[b]; });
  Coalesced c;
  const std::size_t width = size_of(p.dtype);
  std::vector<double> sum(p.row_size);
  for (std::size_t k = 0; k < n;) {
    const std::int64_t row = g.indices[order[k]];
    std::fill(sum.begin(), sum.end(), 0.0);
    for (; k < n && g.indices[order[k]] == row; ++k) {  // in order of appearance
      for (std::size_t j = 0; j < p.row_size; ++j) {
        sum[j] += kernels::load_as_double(p.dtype, g.values, order[k] * p.row_size + j);
      }
    }
    c.rows.push_back(std::size_t(row));
    c.values.resize(c.rows.size() * p.row_size * width);
    for (std::size_t j = 0; j < p.row_size; ++j) {
      kernels::store_from_double(p.dtype, c.values.data(), (c.rows.size() - 1) * p.row_size + j,
                                 sum[j]);
    }
  }
  return c;
}

// The task for elements [begin, end) of the parameter, its gradient at `grad`.
TensorTask slice(const SparseParam& p, const Precision& precision, std::size_t begin,
                 std::size_t end, const void* grad) {
  auto at = [&](void* base, DType dtype) -> void* {
    return base ? static_cast<unsigned char*>(base) + begin * size_of(dtype) : nullptr;
  };
  TensorTask t;
  t.param = at(p.param, p.dtype);
  t.grad = grad;
  t.square_avg = at(p.square_avg, precision.state);
  t.grad_avg = at(p.grad_avg, precision.state);
  t.momentum_buffer = at(p.momentum_buffer, precision.state);
  t.master = p.master ? p.master + begin : nullptr;
  t.size = end - begin;
  return t;
}

}  // namespace

void sparse_step(const Options& options, double lr, const SparseParam& p, const RowGradient& g,
                 SparseMode mode, std::int64_t step, std::span<std::int64_t> row_steps,
                 const KernelConfig& config) {
  options.validate();
  if (p.param == nullptr && p.rows * p.row_size > 0) {
    throw InvalidArgument("sparse parameter: data is null");
  }
  if (mode == SparseMode::lazy && row_steps.size() != p.rows) {
    throw InvalidArgument("sparse lazy step: row_steps has " + std::to_string(row_steps.size()) +
                          " counts for " + std::to_string(p.rows) + " rows");
  }
  if (mode == SparseMode::dense && step < 1) {
    throw InvalidArgument("sparse dense step: step " + std::to_string(step) + ": must be >= 1");
  }
  const Precision precision = precision_for(p.dtype, options, p.rows * p.row_size);
  check_precision(precision);
  if (precision.state == DType::i8_block) {
    throw InvalidArgument(
        "sparse step: state_dtype=int8 is not supported for row gradients yet (8-bit blocks "
        "span rows); use float32 or bfloat16 state, or a larger state8_min_size");
  }
  const Variant variant = variant_of(options);
  const Coalesced c = coalesce(p, g);
  const std::size_t width = size_of(p.dtype);
  std::vector<TensorTask> tasks;
  if (mode == SparseMode::lazy) {
    for (std::size_t k = 0; k < c.rows.size(); ++k) {
      const std::size_t r = c.rows[k];
      TensorTask t = slice(p, precision, r * p.row_size, (r + 1) * p.row_size,
                           c.values.data() + k * p.row_size * width);
      t.coefficients = coefficients(options, row_steps[r] + 1, lr);
      t.rounding_seed = rounding_seed(0, r, row_steps[r] + 1);
      tasks.push_back(t);
    }
  } else {
    // Untouched stretches read a shared zero gradient, one chunk-sized task at a time.
    const std::vector<unsigned char> zeros(kChunkElements * width, 0);
    const Coefficients<double> coef = coefficients(options, step, lr);
    auto add = [&](std::size_t begin, std::size_t end, const void* grad, bool zero) {
      for (std::size_t b = begin; b < end; b += kChunkElements) {
        const std::size_t e = std::min(end, b + kChunkElements);
        const void* at =
            zero ? zeros.data() : static_cast<const unsigned char*>(grad) + (b - begin) * width;
        TensorTask t = slice(p, precision, b, e, at);
        t.coefficients = coef;
        t.rounding_seed = rounding_seed(0, b, step);
        tasks.push_back(t);
      }
    };
    std::size_t next = 0;
    for (std::size_t k = 0; k < c.rows.size(); ++k) {
      const std::size_t r = c.rows[k];
      add(next * p.row_size, r * p.row_size, nullptr, true);
      add(r * p.row_size, (r + 1) * p.row_size, c.values.data() + k * p.row_size * width, false);
      next = r + 1;
    }
    add(next * p.row_size, p.rows * p.row_size, nullptr, true);
    fused_step(variant, precision, tasks, config);
    return;
  }
  fused_step(variant, precision, tasks, config);
  for (std::size_t r : c.rows) ++row_steps[r];
}

}  // namespace rmsprop
