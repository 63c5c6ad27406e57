// The scalar reference kernel: the rule applied element by element, the specification that
// every faster kernel is compared against.
#include <cmath>
#include <string>

#include "check.hpp"
#include "rmsprop/error.hpp"
#include "rmsprop/kernel.hpp"
#include "variant_table.hpp"

namespace rmsprop {
namespace {

template <Variant kV, class T>
void reference_task(const TensorTask& task) {
  using Ops = ScalarOps<T>;
  const auto c = Coefficients<T>::cast(task.coefficients);
  T* param = static_cast<T*>(task.param);
  const T* grad = static_cast<const T*>(task.grad);
  T* square_avg = static_cast<T*>(task.square_avg);
  T* grad_avg = static_cast<T*>(task.grad_avg);
  T* momentum_buffer = static_cast<T*>(task.momentum_buffer);
  for (std::size_t i = 0; i < task.size; ++i) {
    Element<T> e{param[i], grad[i], T(0), T(0), T(0)};
    if constexpr (kV.uses_square_avg()) e.square_avg = square_avg[i];
    if constexpr (kV.uses_grad_avg()) e.grad_avg = grad_avg[i];
    if constexpr (kV.uses_momentum_buffer()) e.momentum_buffer = momentum_buffer[i];
    update<kV, Ops>(e, c);
    param[i] = e.param;
    if constexpr (kV.uses_square_avg()) square_avg[i] = e.square_avg;
    if constexpr (kV.uses_grad_avg()) grad_avg[i] = e.grad_avg;
    if constexpr (kV.uses_momentum_buffer()) momentum_buffer[i] = e.momentum_buffer;
  }
}

void check_task(const Variant& v, const TensorTask& task, std::size_t index) {
  auto need = [&](bool needed, const void* buffer, const char* name) {
    if (needed && buffer == nullptr && task.size > 0) {
      throw InvalidArgument("tensor " + std::to_string(index) + ": " + name +
                            " is null but this variant needs it");
    }
  };
  need(true, task.param, "param");
  need(true, task.grad, "grad");
  need(v.uses_square_avg(), task.square_avg, "square_avg");
  need(v.uses_grad_avg(), task.grad_avg, "grad_avg");
  need(v.uses_momentum_buffer(), task.momentum_buffer, "momentum_buffer");
}

using TaskFn = void (*)(const TensorTask&);

template <class T>
struct MakeReference {
  template <Variant kV>
  static constexpr TaskFn entry() {
    return &reference_task<kV, T>;
  }
};

constexpr auto kF32 = kernels::make_table<MakeReference<float>>();
constexpr auto kF64 = kernels::make_table<MakeReference<double>>();

}  // namespace

void kernels::check_tasks(const Variant& variant, std::span<const TensorTask> tasks) {
  for (std::size_t i = 0; i < tasks.size(); ++i) check_task(variant, tasks[i], i);
}

std::string_view to_string(DType dtype) {
  return dtype == DType::f32 ? "float32" : "float64";
}
std::size_t size_of(DType dtype) {
  return dtype == DType::f32 ? 4 : 8;
}

void reference_step(const Variant& variant, DType dtype, std::span<const TensorTask> tasks) {
  const Variant v = kernels::canonical(variant);
  TaskFn fn = (dtype == DType::f32 ? kF32 : kF64)[kernels::index_of(v)];
  kernels::check_tasks(v, tasks);
  for (const TensorTask& task : tasks) fn(task);
}

bool find_non_finite(DType dtype, const void* data, std::size_t size, std::size_t* index) {
  auto scan = [&](const auto* values) {
    for (std::size_t i = 0; i < size; ++i) {
      if (!std::isfinite(values[i])) {
        if (index) *index = i;
        return true;
      }
    }
    return false;
  };
  return dtype == DType::f32 ? scan(static_cast<const float*>(data))
                             : scan(static_cast<const double*>(data));
}

}  // namespace rmsprop
