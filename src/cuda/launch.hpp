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

}  // namespace rmsprop::cuda::detail
