// Calls f(std::integral_constant<DType, d>{}) for a run-time DType d: one switch for every
// place that turns a dtype into a template argument (host and device).
#pragma once

#include <type_traits>

#include "rmsprop/kernel.hpp"

namespace rmsprop::kernels {

template <class F>
RMSPROP_HOST_DEVICE decltype(auto) with_dtype(DType dtype, F f) {
  switch (dtype) {
    case DType::f64:
      return f(std::integral_constant<DType, DType::f64>{});
    case DType::bf16:
      return f(std::integral_constant<DType, DType::bf16>{});
    case DType::f16:
      return f(std::integral_constant<DType, DType::f16>{});
    case DType::f32:
      break;
    case DType::i8_block:
      // state only (blocks of codes, never elements): the element dtypes that reach here are
      // parameters' and gradients', which the planner has checked
      break;
  }
  return f(std::integral_constant<DType, DType::f32>{});
}

}  // namespace rmsprop::kernels
