#include "gradient_kernel.hpp"

namespace rmsprop::testing {
namespace {

__global__ void quadratic_gradient_kernel(const float* theta, const float* target, float* grad,
                                          std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x) {
    grad[i] = 2.0f * (theta[i] - target[i]);
  }
}

}  // namespace

void quadratic_gradient(const float* theta, const float* target, float* grad, std::size_t n,
                        cudaStream_t stream) {
  quadratic_gradient_kernel<<<256, 256, 0, stream>>>(theta, target, grad, n);
}

}  // namespace rmsprop::testing
