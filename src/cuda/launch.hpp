// What one launch of the multi-tensor kernels carries, and how tensors are dealt to launches.
//
// NOTE: [multi-tensor launches]
// As PyTorch's multi_tensor_apply, a launch's whole description travels by value in the
// kernel's arguments, so a launch needs no host-to-device copy and a CUDA graph captures it
// whole. Unlike it, the description holds up to kMaxTensors = 128 tensors (about 12 KiB of
// arguments: CUDA 12.1+ takes up to 32764 bytes on every GPU that CUDA 13 supports) and no
// per-block table: tensor k owns blocks [first_block[k], first_block[k+1]) of the grid, one
// block per chunk of kChunkElements elements, and a block finds its tensor by binary search.
// So a launch has as many blocks as its tensors have chunks (one launch for any single
// tensor), and a tensor is never split between launches. Why: with PyTorch's limits (24
// tensors and 320 blocks, under the classic 4 KiB), 4096 tensors of 65536 elements ran as 171
// launches of 24 blocks each on an H200's 132 multiprocessors, at 20-34% of the copy
// bandwidth; one tensor of 2^28 elements ran at 78-86% (docs/benchmarks.md).
// This header is plain C++ (no CUDA): the host planner is tested on any machine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "rmsprop/cuda.hpp"
#include "rmsprop/error.hpp"
#include "rmsprop/kernel.hpp"

namespace rmsprop::cuda::detail {

inline constexpr int kMaxTensors = 128;
inline constexpr int kMaxCoefficientSets = 8;
inline constexpr int kBlockThreads = 512;
// The grid's x dimension (2^31 - 1 blocks): no tensor that fits in memory comes near it.
inline constexpr std::uint64_t kMaxLaunchBlocks = 0x7FFFFFFF;
// Kernel arguments: 32764 bytes since CUDA 12.1 (Volta and newer; CUDA 13 starts at Turing).
inline constexpr std::size_t kMaxArgumentBytes = 32764;

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
};

struct StepLaunch {
  TensorSlot tensors[kMaxTensors];
  std::uint32_t first_block[kMaxTensors + 1];  // tensor k: blocks [first_block[k], [k + 1])
  std::int32_t tensor_count;
  Coefficients<double> coefficients[kMaxCoefficientSets];
  const std::int32_t* skip;  // device flag: nonzero, no update
  // Capturable steps (lr non-null): coefficients made on the device from each tensor's step.
  const double* lr;
  CoefficientRecipe recipe;
};
static_assert(sizeof(StepLaunch) <= kMaxArgumentBytes, "kernel arguments fit CUDA's limit");

struct ScanLaunch {
  const void* data[kMaxTensors];
  std::uint64_t size[kMaxTensors];
  std::uint32_t first_block[kMaxTensors + 1];
  std::int32_t tensor_count;
  std::int32_t* flag;
  std::uint8_t dtype[kMaxTensors];
};
static_assert(sizeof(ScanLaunch) <= kMaxArgumentBytes, "kernel arguments fit CUDA's limit");

// The tensor (slot) that block `block` of a launch works on: the last slot whose first block is
// at or before it (an empty tensor shares its first block with the next one, and owns none).
RMSPROP_HOST_DEVICE inline int slot_of_block(const std::uint32_t* first_block, int tensors,
                                             std::uint32_t block) {
  int lo = 0, hi = tensors - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (first_block[mid] <= block) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

// Elements per thread per access on the aligned path: one 16-byte load of the parameter (the
// state, when wider, takes whole multiples of 16 bytes).
constexpr std::size_t pack_elements(DType param) {
  return param == DType::f64 ? 2 : param == DType::f32 ? 4 : 8;
}

// Deals `count` tensors to launches, whole, in order. `add(k)` puts tensor k in the launch being
// filled and returns its slot, or -1 when that launch has no room left for it (an empty launch
// always has room); `flush(blocks, tensors)` sends the launch being filled (first_block filled
// for its tensors and one past them) and starts an empty one. Empty tensors get a slot and no
// block (a capturable step still counts their step), so a launch may have no blocks.
template <class Size, class Add, class Flush>
void plan_launches(std::size_t count, Size size_of_tensor, Add add, Flush flush,
                   std::uint32_t* first_block) {
  std::uint64_t blocks = 0;
  int tensors = 0;
  auto send = [&] {
    first_block[tensors] = std::uint32_t(blocks);
    flush(int(blocks), tensors);
    blocks = 0;
    tensors = 0;
  };
  for (std::size_t k = 0; k < count; ++k) {
    const std::uint64_t chunks = (size_of_tensor(k) + kChunkElements - 1) / kChunkElements;
    if (chunks > kMaxLaunchBlocks) {
      throw InvalidArgument("CUDA step: tensor " + std::to_string(k) + " has " +
                            std::to_string(size_of_tensor(k)) +
                            " elements, more than one launch's grid covers");
    }
    int slot = tensors > 0 && blocks + chunks > kMaxLaunchBlocks ? -1 : add(k);
    if (slot < 0) {
      send();
      slot = add(k);
    }
    first_block[slot] = std::uint32_t(blocks);
    blocks += chunks;
    tensors = slot + 1;
  }
  if (tensors > 0) send();
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
// counter (each task is in exactly one launch, which counts its step).
template <class Send>
void plan_step_launches(const Variant& variant, const Precision& precision,
                        std::span<const TensorTask> tasks, std::span<std::int64_t* const> steps,
                        StepLaunch& launch, Send send) {
  const bool capturable = launch.lr != nullptr;
  int tensors = 0, sets = 0;
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
                               packs_fit(variant, precision, t)};
    return tensors++;
  };
  auto flush = [&](int blocks, int count) {
    launch.tensor_count = count;
    send(blocks, count);
    tensors = sets = 0;
  };
  plan_launches(
      tasks.size(), [&](std::size_t k) { return tasks[k].size; }, add, flush, launch.first_block);
}

}  // namespace rmsprop::cuda::detail
