// The kernels' entry point: one step of the rule over many tensors of plain memory.
//
// Frameworks' tensors (libtorch, NumPy, DLPack) are translated into TensorTask by adapters;
// nothing here knows a framework. State buffers belong to the caller.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "rmsprop/rule.hpp"

namespace rmsprop {

enum class DType : std::uint8_t { f32, f64 };

std::string_view to_string(DType dtype);
std::size_t size_of(DType dtype);

// One tensor's buffers for one step. Buffers the variant does not use may be null
// (Variant::uses_square_avg() and friends say which are read and written).
struct TensorTask {
  void* param = nullptr;
  const void* grad = nullptr;
  void* square_avg = nullptr;
  void* grad_avg = nullptr;
  void* momentum_buffer = nullptr;
  std::size_t size = 0;
  Coefficients<double> coefficients{};  // this tensor's scalars (its own step count and lr)
};

// Applies the rule once to every element of every task with the scalar reference kernel: the
// specification every faster kernel is tested against. Throws InvalidArgument when a buffer
// the variant needs is null.
void reference_step(const Variant& variant, DType dtype, std::span<const TensorTask> tasks);

// True when any element of the `size` values at `data` is NaN or ±inf; `index` gets the first.
bool find_non_finite(DType dtype, const void* data, std::size_t size, std::size_t* index);

}  // namespace rmsprop
