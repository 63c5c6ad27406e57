// What the translation units of `rmsprop._core` share.
#pragma once

#include <pybind11/pybind11.h>

#include <string>
#include <string_view>

#include "rmsprop/dtype.hpp"

namespace rmsprop::python {

// The DType named `name` (rmsprop/dtype.hpp); InvalidArgument naming it otherwise.
DType dtype_from(const std::string& name);

// A lasting copy of `text`, for the string_views of the planner's messages.
std::string_view intern(const std::string& text);

void bind_torch_stepper(pybind11::module_& m);

}  // namespace rmsprop::python
