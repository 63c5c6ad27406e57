// What one launch of the multi-tensor kernels carries, and how tensors are dealt to launches.
//
// NOTE: [multi-tensor launches]
// As PyTorch's multi_tensor_apply: a launch's whole description (up to kMaxTensors tensors'
// pointers and up to kMaxBlocks (tensor, chunk) pairs) travels by value in the kernel's
// arguments (under the classic 4 KiB limit), so a launch needs no host-to-device copy and a
// CUDA graph captures it whole. Block b updates chunk block_chunk[b] of tensor
// block_tensor[b]; a list of tensors longer than one launch holds takes several launches.
// This header is plain C++ (no CUDA): the host planner is tested on any machine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "rmsprop/cuda.hpp"
#include "rmsprop/kernel.hpp"

namespace rmsprop::cuda::detail {

inline constexpr int kMaxTensors = 24;
inline constexpr int kMaxBlocks = 320;
inline constexpr int kMaxCoefficientSets = 4;
inline constexpr int kBlockThreads = 512;

struct TensorSlot {
  void* param;
  const void* grad;
  void* square_avg;
  void* grad_avg;
  void* momentum_buffer;
  float* master;
  std::uint64_t size;
  std::uint32_t seed;
  std::int64_t* step;         // capturable: the device step counter
  std::uint8_t coefficients;  // index into StepLaunch::coefficients
  bool aligned;               // every buffer it uses allows whole-pack (16-byte) accesses
  bool counts_step;           // capturable: this launch holds the tensor's first chunk
};

struct StepLaunch {
  TensorSlot tensors[kMaxTensors];
  Coefficients<double> coefficients[kMaxCoefficientSets];
  const std::int32_t* skip;  // device flag: nonzero, no update
  // Capturable steps (lr non-null): coefficients made on the device from each tensor's step.
  const double* lr;
  CoefficientRecipe recipe;
  std::uint8_t block_tensor[kMaxBlocks];
  std::uint32_t block_chunk[kMaxBlocks];
};
static_assert(sizeof(StepLaunch) <= 4096, "kernel arguments stay under 4 KiB");

struct ScanLaunch {
  const void* data[kMaxTensors];
  std::uint64_t size[kMaxTensors];
  std::int32_t* flag;
  std::uint8_t dtype[kMaxTensors];
  std::uint8_t block_tensor[kMaxBlocks];
  std::uint32_t block_chunk[kMaxBlocks];
};
static_assert(sizeof(ScanLaunch) <= 4096, "kernel arguments stay under 4 KiB");

// Elements per thread per access on the aligned path: one 16-byte load of the parameter (the
// state, when wider, takes whole multiples of 16 bytes).
constexpr std::size_t pack_elements(DType param) {
  return param == DType::f64 ? 2 : param == DType::f32 ? 4 : 8;
}

// Deals the chunks of `count` tensors to launches. `add(k)` puts tensor k in the launch being
// filled and returns its slot, or -1 when that launch has no room left for it (an empty launch
// always has room); `flush(blocks)` sends the launch being filled and starts an empty one.
// Empty tensors get a slot and no block (a capturable step still counts their step), so a
// launch may have no blocks.
template <class Size, class Add, class Flush>
void plan_launches(std::size_t count, Size size_of_tensor, Add add, Flush flush,
                   std::uint8_t* block_tensor, std::uint32_t* block_chunk) {
  int blocks = 0;
  bool pending = false;
  auto send = [&] {
    flush(blocks);
    blocks = 0;
    pending = false;
  };
  for (std::size_t k = 0; k < count; ++k) {
    int slot = add(k);
    if (slot < 0) {
      send();
      slot = add(k);
    }
    pending = true;
    const std::size_t chunks = (size_of_tensor(k) + kChunkElements - 1) / kChunkElements;
    for (std::size_t c = 0; c < chunks; ++c) {
      if (blocks == kMaxBlocks) {
        send();  // the rest of this tensor's chunks go to the next launch
        slot = add(k);
        pending = true;
      }
      block_tensor[blocks] = std::uint8_t(slot);
      block_chunk[blocks] = std::uint32_t(c);
      ++blocks;
    }
  }
  if (pending) send();
}

namespace fit {
inline bool aligned_to(const void* pointer, std::size_t bytes) {
  return pointer == nullptr || reinterpret_cast<std::uintptr_t>(pointer) % bytes == 0;
}
}  // namespace fit

// Whether every buffer the step touches allows the kernel's whole-pack accesses.
inline bool packs_fit(const Variant& v, const Precision& p, const TensorTask& t) {
  using fit::aligned_to;
  const std::size_t n = pack_elements(p.param);
  const std::size_t param = n * size_of(p.param), state = n * size_of(p.state);
  return aligned_to(t.param, param) && aligned_to(t.grad, param) &&
         (!p.master_weights || aligned_to(t.master, n * sizeof(float))) &&
         (!v.uses_square_avg() || aligned_to(t.square_avg, state)) &&
         (!v.uses_grad_avg() || aligned_to(t.grad_avg, state)) &&
         (!v.uses_momentum_buffer() || aligned_to(t.momentum_buffer, state));
}

// Fills `launch` (its mode set: lr non-null for capturable steps) with the tasks, launch after
// launch, calling send(blocks, tensors) for each. Tasks share one of a launch's coefficient
// sets when their coefficients are identical; capturable steps take steps[k] as task k's
// counter, counted in the launch that holds the task's first chunk.
template <class Send>
void plan_step_launches(const Variant& variant, const Precision& precision,
                        std::span<const TensorTask> tasks, std::span<std::int64_t* const> steps,
                        StepLaunch& launch, Send send) {
  const bool capturable = launch.lr != nullptr;
  int tensors = 0, sets = 0;
  std::size_t counted = 0;  // tasks [0, counted) have a launch that counts their step
  auto add = [&](std::size_t k) -> int {
    const TensorTask& t = tasks[k];
    if (tensors == kMaxTensors) return -1;
    int set = 0;
    if (!capturable) {
      while (set < sets && std::memcmp(&launch.coefficients[set], &t.coefficients,
                                       sizeof(Coefficients<double>)) != 0) {
        ++set;
      }
      if (set == sets) {
        if (sets == kMaxCoefficientSets) return -1;
        launch.coefficients[sets++] = t.coefficients;
      }
    }
    const bool first = capturable && k + 1 > counted;
    if (first) counted = k + 1;
    launch.tensors[tensors] = {t.param,
                               t.grad,
                               t.square_avg,
                               t.grad_avg,
                               t.momentum_buffer,
                               t.master,
                               t.size,
                               t.rounding_seed,
                               capturable ? steps[k] : nullptr,
                               std::uint8_t(set),
                               packs_fit(variant, precision, t),
                               first};
    return tensors++;
  };
  auto flush = [&](int blocks) {
    send(blocks, tensors);
    tensors = sets = 0;
  };
  plan_launches(
      tasks.size(), [&](std::size_t k) { return tasks[k].size; }, add, flush, launch.block_tensor,
      launch.block_chunk);
}

}  // namespace rmsprop::cuda::detail
