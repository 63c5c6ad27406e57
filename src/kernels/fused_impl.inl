// The fused CPU kernel's body, compiled once per SIMD target: each fused_<target>.cpp defines
// RMSPROP_TARGET_NAMESPACE and includes this file, with that target's -m flags.
//
// The loop is the rule (rule.hpp) over plain values; -O3 -fno-math-errno vectorizes it for the
// target (checked with -fopt-info-vec: see docs/kernels.md). Every element is independent and
// no operation is fused (NOTE: [no fused multiply-add]), so vector lanes, the scalar
// remainder and every thread count give the reference kernel's bits.
#include <cstddef>

#include "fused_table.hpp"
#include "rmsprop/kernel.hpp"
#include "variant_table.hpp"

namespace rmsprop::kernels::RMSPROP_TARGET_NAMESPACE {
namespace {

template <Variant kV, class T>
void fused_range(const TensorTask& task, std::size_t begin, std::size_t end) {
  using Ops = ScalarOps<T>;
  const auto c = Coefficients<T>::cast(task.coefficients);
  T* __restrict param = static_cast<T*>(task.param);
  const T* __restrict grad = static_cast<const T*>(task.grad);
  T* __restrict square_avg = static_cast<T*>(task.square_avg);
  T* __restrict grad_avg = static_cast<T*>(task.grad_avg);
  T* __restrict momentum_buffer = static_cast<T*>(task.momentum_buffer);
#pragma omp simd
  for (std::size_t i = begin; i < end; ++i) {
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

template <class T>
struct MakeFused {
  template <Variant kV>
  static constexpr RangeFn entry() {
    return &fused_range<kV, T>;
  }
};

}  // namespace

const FusedTables& tables() {
  static constexpr FusedTables kTables{make_table<MakeFused<float>>(),
                                       make_table<MakeFused<double>>()};
  return kTables;
}

}  // namespace rmsprop::kernels::RMSPROP_TARGET_NAMESPACE
