// Sparse (row) gradients, as embeddings produce: a [rows × row_size] parameter whose gradient
// is given for some rows only — row indices, possibly repeated and unsorted, and one row of
// values per index. Repeated rows are summed first (in double, in order of appearance, rounded
// once to the parameter's dtype).
//
// Two semantics:
//   SparseMode::dense — the same result as the dense step with zero rows, bitwise: every row's
//     accumulators decay (the saving is the gradient's memory, not the state's).
//   SparseMode::lazy — only the touched rows are read and written, their state updated as if
//     those were the only steps they saw (TF1's sparse apply); with per-row step counts, bias
//     correction counts each row's own steps.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "rmsprop/kernel.hpp"
#include "rmsprop/options.hpp"

namespace rmsprop {

enum class SparseMode : std::uint8_t { lazy, dense };

// A [rows × row_size] parameter and its state (null where the variant needs none).
struct SparseParam {
  void* param = nullptr;
  DType dtype = DType::f32;
  std::size_t rows = 0, row_size = 0;
  void* square_avg = nullptr;
  void* grad_avg = nullptr;
  void* momentum_buffer = nullptr;
  float* master = nullptr;  // master_weights: the float32 parameter
};

struct RowGradient {
  std::span<const std::int64_t> indices;  // rows, any order, repeats summed
  const void* values = nullptr;           // indices.size() × row_size values of the param dtype
};

// One step with `options` at learning rate `lr`. dense: `step` is the parameter's step count
// including this one (as for a dense step). lazy: `row_steps` (size rows) holds each row's step
// count; touched rows' counts are incremented and used; `step` is ignored. Throws
// InvalidArgument naming a bad index (and its position), a size mismatch or a missing buffer,
// before anything changes.
void sparse_step(const Options& options, double lr, const SparseParam& param,
                 const RowGradient& grad, SparseMode mode, std::int64_t step,
                 std::span<std::int64_t> row_steps = {}, const KernelConfig& config = {});

}  // namespace rmsprop
