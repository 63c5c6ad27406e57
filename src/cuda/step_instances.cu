// The step kernels for one parameter type: compiled once per type, RMSPROP_CUDA_PARAM being
// the DType's value (see CMakeLists.txt), so the four parts build in parallel.
#include "step_kernel.cuh"

namespace rmsprop::cuda::detail {

template <>
const LaunchTable& launch_table_part<DType(RMSPROP_CUDA_PARAM)>() {
  static const LaunchTable kTable = launch_table_part<DType(RMSPROP_CUDA_PARAM)>(
      std::make_index_sequence<kernels::kNumPrecisionIndices>{});
  return kTable;
}

}  // namespace rmsprop::cuda::detail
