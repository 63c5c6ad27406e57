// The CUDA backend's functions in a build without CUDA: each says so instead of failing to link.
#include "rmsprop/cuda.hpp"

namespace rmsprop::cuda {
namespace {

[[noreturn]] void unavailable(const char* what) {
  throw NotBuiltWithCuda(std::string("rmsprop::cuda::") + what +
                         ": this rmsprop was built without CUDA (configure with nvcc on the PATH "
                         "or at /usr/local/cuda/bin, or -DRMSPROP_CUDA=ON)");
}

}  // namespace

bool built() {
  return false;
}
int device_count() {
  return 0;
}
std::string device_problem() {
  return "this rmsprop was built without CUDA";
}

void fused_step(const Variant&, const Precision&, std::span<const TensorTask>, Stream,
                const std::int32_t*) {
  unavailable("fused_step");
}

void capturable_step(const Options&, const Precision&, std::span<const TensorTask>,
                     std::span<std::int64_t* const>, const DeviceScalars&, Stream) {
  unavailable("capturable_step");
}

void flag_non_finite(std::span<const ConstBuffer>, std::int32_t*, Stream) {
  unavailable("flag_non_finite");
}

std::optional<NonFiniteValue> find_non_finite(std::span<const ConstBuffer>, Stream) {
  unavailable("find_non_finite");
}

void copy_synchronously(void*, const void*, std::size_t, int) {
  unavailable("copy_synchronously");
}

}  // namespace rmsprop::cuda
