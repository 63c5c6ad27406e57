// A training step's gradient computed on the device, for the CUDA tests: the gradient of
// loss(θ) = Σ (θ − target)², read from the current parameters (so each step depends on the last).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

namespace rmsprop::testing {

void quadratic_gradient(const float* theta, const float* target, float* grad, std::size_t n,
                        cudaStream_t stream);

}  // namespace rmsprop::testing
