// The CUDA backend: the rule of rule.hpp as one fused multi-tensor kernel on the GPU.
//
// TensorTask's pointers are device pointers here; everything else means what it means for
// fused_step. Every call is asynchronous on the stream it is given (nullptr: the legacy
// default stream) and returns once the work is queued. This header needs no CUDA header: a
// stream is passed as the `cudaStream_t` value it is (a pointer), and a library built without
// CUDA has the same functions, which say so (NotBuiltWithCuda) when called.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "rmsprop/error.hpp"
#include "rmsprop/kernel.hpp"
#include "rmsprop/rule.hpp"

namespace rmsprop::cuda {

using Stream = void*;  // a cudaStream_t

// Thrown by every function below (but `built` and `device_count`) in a build without CUDA.
struct NotBuiltWithCuda : Error {
  using Error::Error;
};

// A CUDA runtime call failed; the message names the call and CUDA's error string.
struct CudaError : Error {
  using Error::Error;
};

// Whether this library was compiled with its CUDA backend.
bool built();
// The number of usable CUDA devices (0 without a GPU or driver, or without the backend).
int device_count();
// Why device_count() is 0, in the runtime's words (no device, no driver, a driver too old for
// this CUDA runtime...), or "" when there are devices: what skipped GPU tests print.
std::string device_problem();

// Elements one thread block updates; tensors are cut into chunks of this size, many tensors
// and chunks per launch (the metadata of a launch travels in the kernel's arguments). 16384:
// 32 per thread of a 512-thread block, so that a launch of small tensors still has several
// blocks per multiprocessor (see NOTE: [multi-tensor launches] in src/cuda/launch.hpp).
inline constexpr std::size_t kChunkElements = 16384;

// One step of the rule over device buffers, as rmsprop::fused_step over host buffers: each
// task's own coefficients, bitwise the same results as reference_step (the same IEEE
// operations, no fused multiply-add: the CUDA code is compiled with --fmad=false). When `skip`
// (a device int32) is given and nonzero when the kernels run, nothing changes: the non-finite
// policy `skip` decided on the device (see flag_non_finite), with no host round trip.
void fused_step(const Variant& variant, const Precision& precision,
                std::span<const TensorTask> tasks, Stream stream = nullptr,
                const std::int32_t* skip = nullptr);
inline void fused_step(const Variant& variant, DType dtype, std::span<const TensorTask> tasks,
                       Stream stream = nullptr, const std::int32_t* skip = nullptr) {
  fused_step(variant, Precision::of(dtype), tasks, stream, skip);
}

// Device-resident scalars of a capturable step.
struct DeviceScalars {
  const double* lr = nullptr;          // required: the learning rate (a schedule may write it)
  const std::int32_t* skip = nullptr;  // optional: nonzero makes the whole step a no-op
};

// One step of every task under `options`, with nothing read from the host at run time, so
// that it can be captured in a CUDA graph and replayed (what PyTorch calls `capturable`):
// unless *skip, each task's step counter *steps[k] (a device int64, one per task, steps taken
// so far) grows by one and task k is updated with coefficient_recipe(options).at(*steps[k],
// *lr). TensorTask::coefficients is ignored; stochastic rounding mixes the device step count
// into TensorTask::rounding_seed, so replays round differently each step. The coefficients are
// computed on the device (its pow may differ from the host's in the last bit where bias
// correction is on; without it the results equal fused_step's bitwise).
void capturable_step(const Options& options, const Precision& precision,
                     std::span<const TensorTask> tasks, std::span<std::int64_t* const> steps,
                     const DeviceScalars& scalars, Stream stream = nullptr);

// Sets *flag (a device int32) to 1 when any element of the device buffers is NaN or ±inf,
// else leaves it: queued on `stream`, no host synchronisation. With `skip` above it gives the
// non-finite policy `skip` entirely on the device.
void flag_non_finite(std::span<const ConstBuffer> buffers, std::int32_t* flag,
                     Stream stream = nullptr);

// The first NaN or ±inf among device buffers (in list order): which buffer, which element,
// its value; nullopt when every element is finite. Synchronizes `stream` once (a flag read);
// only when there is one, the flagged buffers are copied to the host to find it.
struct NonFiniteValue {
  std::size_t buffer = 0;
  std::size_t element = 0;
  double value = 0;
};
std::optional<NonFiniteValue> find_non_finite(std::span<const ConstBuffer> buffers,
                                              Stream stream = nullptr);

// Copies `bytes` between host and device memory, either way (unified addressing tells which),
// once all work queued on device `device` has finished, and waits for the copy. What the
// planner stages state through when it makes or converts 8-bit state of a CUDA parameter on
// the host (initialize_state: a tensor's first step, or a change of state dtype).
void copy_synchronously(void* dst, const void* src, std::size_t bytes, int device);

}  // namespace rmsprop::cuda
