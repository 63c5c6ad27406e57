// Argument checks shared by every kernel entry point.
#pragma once

#include <span>

#include "rmsprop/kernel.hpp"

namespace rmsprop::kernels {

// Throws InvalidArgument naming the task and buffer when a buffer the variant needs is null.
void check_tasks(const Variant& variant, const Precision& precision,
                 std::span<const TensorTask> tasks);

}  // namespace rmsprop::kernels
