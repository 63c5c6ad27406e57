// The kernels' entry point: one step of the rule over many tensors of plain memory.
//
// Frameworks' tensors (libtorch, NumPy, DLPack) are translated into TensorTask by adapters;
// nothing here knows a framework. State buffers belong to the caller.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "rmsprop/rule.hpp"

namespace rmsprop {

enum class DType : std::uint8_t { f32, f64 };

std::string_view to_string(DType dtype);
std::size_t size_of(DType dtype);

// One tensor's buffers for one step. Buffers the variant does not use may be null
// (Variant::uses_square_avg() and friends say which are read and written).
struct TensorTask {
  void* param = nullptr;
  const void* grad = nullptr;
  void* square_avg = nullptr;
  void* grad_avg = nullptr;
  void* momentum_buffer = nullptr;
  std::size_t size = 0;
  Coefficients<double> coefficients{};  // this tensor's scalars (its own step count and lr)
};

// Applies the rule once to every element of every task with the scalar reference kernel: the
// specification every faster kernel is tested against. Throws InvalidArgument when a buffer
// the variant needs is null.
void reference_step(const Variant& variant, DType dtype, std::span<const TensorTask> tasks);

// The SIMD instruction sets the fused kernel is compiled for; the best one the CPU supports
// is chosen at run time (the environment variable RMSPROP_SIMD=baseline|avx2|avx512 can
// lower it).
enum class SimdTarget : std::uint8_t { baseline, avx2, avx512 };
std::string_view to_string(SimdTarget target);
// The targets this build has and this CPU can run, best last.
std::span<const SimdTarget> available_simd_targets();
// The target fused_step uses when KernelConfig::target is unset.
SimdTarget default_simd_target();

struct KernelConfig {
  int threads = 0;                   // 0: all cores (OpenMP's default); 1: the calling thread
  std::optional<SimdTarget> target;  // unset: default_simd_target()
};

// The number of elements one thread takes at a time. Work is cut into chunks of this size
// across all tasks (a tensor's last chunk may be shorter) and chunks are dealt to threads
// statically; the rule is elementwise, so any partition gives the same bits.
inline constexpr std::size_t kChunkElements = 16384;

// One step of the rule over all tasks in one fused pass: each buffer read once and written
// once, SIMD over elements, threads over chunks. Bitwise equal to reference_step for every
// variant, dtype, target and thread count.
void fused_step(const Variant& variant, DType dtype, std::span<const TensorTask> tasks,
                const KernelConfig& config = {});

// True when any element of the `size` values at `data` is NaN or ±inf; `index` gets the first.
bool find_non_finite(DType dtype, const void* data, std::size_t size, std::size_t* index);

}  // namespace rmsprop
