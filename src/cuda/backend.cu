// The CUDA backend's host side: checks, launch planning, device scalars, the non-finite scan.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "../kernels/check.hpp"
#include "../kernels/dtype_dispatch.hpp"
#include "../kernels/storage.hpp"
#include "launch.hpp"
#include "rmsprop/cuda.hpp"
#include "step_block.hpp"
#include "step_table.cuh"

namespace rmsprop::cuda {

namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw CudaError(std::string(what) + " failed: " + cudaGetErrorName(status) + ": " +
                    cudaGetErrorString(status));
  }
}

cudaStream_t native(Stream stream) {
  return static_cast<cudaStream_t>(stream);
}

const detail::LaunchTable& launch_table() {
  static const detail::LaunchTable kTable = [] {
    detail::LaunchTable table{};
    for (const detail::LaunchTable* part :
         {&detail::launch_table_part<DType::f32>(), &detail::launch_table_part<DType::f64>(),
          &detail::launch_table_part<DType::bf16>(), &detail::launch_table_part<DType::f16>()}) {
      for (std::size_t p = 0; p < table.size(); ++p) {
        for (std::size_t v = 0; v < table[p].size(); ++v) {
          if ((*part)[p][v] != nullptr) table[p][v] = (*part)[p][v];
        }
      }
    }
    return table;
  }();
  return kTable;
}

// A host buffer passed where a device buffer belongs is the likeliest misuse: one query per
// call (not per tensor, which would cost microseconds each) catches it with a clear message.
void check_device_pointer(const void* pointer, const char* what) {
  if (pointer == nullptr) return;
  cudaPointerAttributes attributes{};
  check(cudaPointerGetAttributes(&attributes, pointer), "cudaPointerGetAttributes");
  if (attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged) {
    throw InvalidArgument(std::string(what) +
                          " is not CUDA device memory (a host buffer was passed to the CUDA "
                          "backend: use rmsprop::fused_step for host buffers)");
  }
}

void check_tasks(const Variant& v, const Precision& p, std::span<const TensorTask> tasks,
                 cudaStream_t stream) {
  check_precision(p);
  kernels::check_tasks(v, p, tasks);
  // While a graph is being captured only stream work is allowed: the query waits for eager
  // calls (the same code, checked there).
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  check(cudaStreamIsCapturing(stream, &capturing), "cudaStreamIsCapturing");
  if (capturing != cudaStreamCaptureStatusNone) return;
  for (const TensorTask& t : tasks) {
    if (t.size > 0) {
      check_device_pointer(t.param, "the first non-empty task's param");
      break;
    }
  }
}

// Capturable steps: one thread per tensor counts the step, before the step kernel reads it.
__global__ void prepare_steps(const __grid_constant__ detail::StepLaunch launch, int tensors) {
  detail::count_step(launch, int(threadIdx.x), tensors);
}

// Plans and sends the launches; `steps` (capturable) gives each task's device step counter.
void launch_steps(const Variant& variant, const Precision& precision,
                  std::span<const TensorTask> tasks, std::span<std::int64_t* const> steps,
                  detail::StepLaunch& launch, cudaStream_t stream) {
  const detail::LaunchFn fn =
      launch_table()[kernels::index_of(precision)][kernels::index_of(variant)];
  detail::plan_step_launches(
      variant, precision, tasks, steps, launch, [&](int blocks, int tensors) {
        if (launch.lr != nullptr) {
          prepare_steps<<<1, detail::kMaxTensors, 0, stream>>>(launch, tensors);
          check(cudaGetLastError(), "launching prepare_steps");
        }
        if (blocks > 0) {
          fn(launch, blocks, stream);
          check(cudaGetLastError(), "launching the step kernel");
        }
      });
}

template <DType kD>
__device__ bool any_non_finite(const void* data, std::size_t begin, std::size_t end) {
  const auto* bits = static_cast<const typename kernels::NonFiniteBits<kD>::Bits*>(data);
  bool bad = false;
  for (std::size_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    bad |= kernels::is_non_finite_bits<kD>(bits[i]);
  }
  return bad;
}

__global__ void __launch_bounds__(detail::kBlockThreads)
    scan_kernel(const __grid_constant__ detail::ScanLaunch launch) {
  const int k = detail::slot_of_block(launch.first_block, launch.tensor_count, blockIdx.x);
  const std::size_t begin = std::size_t(blockIdx.x - launch.first_block[k]) * kChunkElements;
  const std::size_t end =
      begin + kChunkElements < launch.size[k] ? begin + kChunkElements : launch.size[k];
  const bool bad = kernels::with_dtype(DType(launch.dtype[k]), [&](auto dtype) {
    return any_non_finite<decltype(dtype)::value>(launch.data[k], begin, end);
  });
  // Only ever 0 → 1, so plain racing stores of the same value are benign; any thread that saw
  // a bad value writes it.
  if (bad) *launch.flag = 1;
}

}  // namespace

bool built() {
  return true;
}

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // no driver or no device: not an error for the caller
    return 0;
  }
  return count;
}

std::string device_problem() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    return std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status);
  }
  return count > 0 ? "" : "no CUDA device";
}

void fused_step(const Variant& variant, const Precision& precision,
                std::span<const TensorTask> tasks, Stream stream, const std::int32_t* skip) {
  const Variant v = kernels::canonical(variant);
  check_tasks(v, precision, tasks, native(stream));
  detail::StepLaunch launch{};
  launch.skip = skip;
  launch_steps(v, precision, tasks, {}, launch, native(stream));
}

void capturable_step(const Options& options, const Precision& precision,
                     std::span<const TensorTask> tasks, std::span<std::int64_t* const> steps,
                     const DeviceScalars& scalars, Stream stream) {
  options.validate();
  const Variant v = kernels::canonical(variant_of(options));
  check_tasks(v, precision, tasks, native(stream));
  if (scalars.lr == nullptr) {
    throw InvalidArgument("capturable_step: DeviceScalars::lr is null (a device double)");
  }
  if (steps.size() != tasks.size()) {
    throw InvalidArgument("capturable_step: " + std::to_string(steps.size()) +
                          " step counters for " + std::to_string(tasks.size()) + " tasks");
  }
  std::vector<std::int64_t*> sorted(steps.begin(), steps.end());
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t k = 0; k < sorted.size(); ++k) {
    if (sorted[k] == nullptr) {
      throw InvalidArgument("capturable_step: a task's step counter is null");
    }
    if (k > 0 && sorted[k] == sorted[k - 1]) {
      throw InvalidArgument(
          "capturable_step: two tasks share a step counter (each task counts "
          "its own steps)");
    }
  }
  detail::StepLaunch launch{};
  launch.skip = scalars.skip;
  launch.lr = scalars.lr;
  launch.recipe = coefficient_recipe(options);
  launch_steps(v, precision, tasks, steps, launch, native(stream));
}

void flag_non_finite(std::span<const ConstBuffer> buffers, std::int32_t* flag, Stream stream) {
  if (flag == nullptr) throw InvalidArgument("flag_non_finite: the flag pointer is null");
  for (std::size_t k = 0; k < buffers.size(); ++k) {
    if (buffers[k].size > 0 && buffers[k].data == nullptr) {
      throw InvalidArgument("flag_non_finite: buffer " + std::to_string(k) + " has " +
                            std::to_string(buffers[k].size) + " elements and a null pointer");
    }
  }
  detail::ScanLaunch launch{};
  launch.flag = flag;
  int tensors = 0;
  auto add = [&](std::size_t k) -> int {
    if (tensors == detail::kMaxTensors) return -1;
    launch.data[tensors] = buffers[k].data;
    launch.size[tensors] = buffers[k].size;
    launch.dtype[tensors] = std::uint8_t(buffers[k].dtype);
    return tensors++;
  };
  auto flush = [&](int blocks, int count) {
    launch.tensor_count = count;
    if (blocks > 0) {
      scan_kernel<<<blocks, detail::kBlockThreads, 0, native(stream)>>>(launch);
      check(cudaGetLastError(), "launching the non-finite scan");
    }
    tensors = 0;
  };
  detail::plan_launches(
      buffers.size(), [&](std::size_t k) { return buffers[k].size; }, add, flush,
      launch.first_block);
}

std::optional<NonFiniteValue> find_non_finite(std::span<const ConstBuffer> buffers, Stream stream) {
  if (buffers.empty()) return std::nullopt;
  const cudaStream_t s = native(stream);
  std::int32_t* flag = nullptr;
  check(cudaMallocAsync(reinterpret_cast<void**>(&flag), sizeof(std::int32_t), s),
        "cudaMallocAsync (non-finite flag)");
  std::int32_t found = 0;
  try {
    check(cudaMemsetAsync(flag, 0, sizeof(std::int32_t), s), "cudaMemsetAsync (non-finite flag)");
    flag_non_finite(buffers, flag, stream);
    check(cudaMemcpyAsync(&found, flag, sizeof(std::int32_t), cudaMemcpyDeviceToHost, s),
          "reading the non-finite flag");
  } catch (...) {
    cudaFreeAsync(flag, s);
    throw;
  }
  check(cudaFreeAsync(flag, s), "cudaFreeAsync (non-finite flag)");
  check(cudaStreamSynchronize(s), "waiting for the non-finite scan");
  if (found == 0) return std::nullopt;
  // the rare path: find the element on the host, buffer by buffer, in list order
  for (std::size_t k = 0; k < buffers.size(); ++k) {
    const ConstBuffer& b = buffers[k];
    std::vector<std::byte> host(b.size * size_of(b.dtype));
    if (host.empty()) continue;
    check(cudaMemcpyAsync(host.data(), b.data, host.size(), cudaMemcpyDeviceToHost, s),
          "copying a flagged buffer to the host");
    check(cudaStreamSynchronize(s), "copying a flagged buffer to the host");
    std::size_t at = 0;
    if (rmsprop::find_non_finite(b.dtype, host.data(), b.size, &at)) {
      return NonFiniteValue{k, at, kernels::load_as_double(b.dtype, host.data(), at)};
    }
  }
  return std::nullopt;
}

void copy_synchronously(void* dst, const void* src, std::size_t bytes, int device) {
  if (bytes == 0) return;
  int current = 0;
  check(cudaGetDevice(&current), "cudaGetDevice");
  check(cudaSetDevice(device), "cudaSetDevice");
  try {
    check(cudaDeviceSynchronize(), "waiting for the device before a state copy");
    check(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault), "copying state between host and device");
  } catch (...) {
    cudaSetDevice(current);
    throw;
  }
  check(cudaSetDevice(current), "cudaSetDevice");
}

}  // namespace rmsprop::cuda
