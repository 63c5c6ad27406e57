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
#include <utility>

#include "rmsprop/dtype.hpp"
#include "rmsprop/rule.hpp"

namespace rmsprop {

// How a step stores its values. Supported combinations:
//   param float64: state float64.
//   param float32: state float32, bfloat16 or 8-bit (i8_block).
//   param bfloat16 / float16: state float32, bfloat16 or 8-bit; master_weights keeps a float32
//   copy of the parameter (TensorTask::master) that the rule updates, the 16-bit parameter
//   being its rounded image; stochastic_rounding (bfloat16 only) rounds that image
//   stochastically.
// 8-bit state (NOTE: [8-bit state] in state8.hpp) is decoded to float32 per block, the rule
// computes in float32, and the block is encoded again: TensorTask's state pointers then point
// to state8_bytes(size) bytes each.
struct Precision {
  DType param = DType::f32;  // parameters and gradients
  DType state = DType::f32;  // square_avg, grad_avg, momentum_buffer
  bool master_weights = false;
  bool stochastic_rounding = false;

  constexpr bool supported() const {
    const bool narrow_state =
        state == DType::f32 || state == DType::bf16 || state == DType::i8_block;
    switch (param) {
      case DType::f64:
        return state == DType::f64 && !master_weights && !stochastic_rounding;
      case DType::f32:
        return narrow_state && !master_weights && !stochastic_rounding;
      case DType::bf16:
        return narrow_state;
      case DType::f16:
        return narrow_state && !stochastic_rounding;
      case DType::i8_block:
        break;
    }
    return false;
  }
  // The precision of plain float32 or float64 buffers throughout.
  static constexpr Precision of(DType dtype) { return {dtype, dtype, false, false}; }
  constexpr bool operator==(const Precision&) const = default;
};

// How a parameter of `dtype` is stored under `options` (state_dtype, master_weights,
// stochastic_rounding): what the optimizer adapters (C++, libtorch, Python) all use.
// float64 parameters with state_dtype=bfloat16 or int8 give an unsupported precision
// (refused by name: precision_problem in step_plan.hpp), never a silent float64 state.
// Tensors smaller than options.state8_min_size keep float32 state under state_dtype=int8.
inline Precision precision_for(DType dtype, const Options& options, std::size_t size) {
  const bool half = dtype == DType::bf16 || dtype == DType::f16;
  DType state = dtype == DType::f64 ? DType::f64 : DType::f32;
  if (options.state_dtype == StateDType::bfloat16) state = DType::bf16;
  if (options.state_dtype == StateDType::int8 &&
      (dtype == DType::f64 || size >= std::size_t(options.state8_min_size))) {
    state = DType::i8_block;
  }
  return {dtype, state, half && options.master_weights, half && options.stochastic_rounding};
}

// Throws InvalidArgument describing the combination when it is not supported.
void check_precision(const Precision& precision);

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
  float* master = nullptr;              // Precision::master_weights: the float32 parameter
  std::uint32_t rounding_seed = 0;      // Precision::stochastic_rounding: vary it every step
};

// A TensorTask::rounding_seed for parameter `index` of `group` at its step `step`: distinct
// per parameter and step, the same for every run (what all the optimizer adapters use).
inline std::uint32_t rounding_seed(std::size_t group, std::size_t index, std::int64_t step) {
  std::uint64_t z = (std::uint64_t(group) << 48) ^ (std::uint64_t(index) << 24) ^
                    std::uint64_t(step) ^ 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return std::uint32_t(z ^ (z >> 31));
}

// Applies the rule once to every element of every task with the scalar reference kernel: the
// specification every faster kernel is tested against. Throws InvalidArgument when a buffer
// the variant needs is null.
void reference_step(const Variant& variant, const Precision& precision,
                    std::span<const TensorTask> tasks);
inline void reference_step(const Variant& variant, DType dtype, std::span<const TensorTask> tasks) {
  reference_step(variant, Precision::of(dtype), tasks);
}

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
void fused_step(const Variant& variant, const Precision& precision,
                std::span<const TensorTask> tasks, const KernelConfig& config = {});
inline void fused_step(const Variant& variant, DType dtype, std::span<const TensorTask> tasks,
                       const KernelConfig& config = {}) {
  fused_step(variant, Precision::of(dtype), tasks, config);
}

// True when any element of the `size` values (of any DType) at `data` is NaN or ±inf; `index` gets
// the first.
bool find_non_finite(DType dtype, const void* data, std::size_t size, std::size_t* index);

// A read-only buffer of `size` values of `dtype`.
struct ConstBuffer {
  const void* data = nullptr;
  DType dtype = DType::f32;
  std::size_t size = 0;
};

// The first non-finite value over a list of buffers, as (buffer index, element index), or
// nothing. One pass, threads over fixed chunks as fused_step (0: all cores): the check the
// non-finite policies make before a step, at memory speed.
std::optional<std::pair<std::size_t, std::size_t>> find_non_finite(
    std::span<const ConstBuffer> buffers, int threads = 0);

}  // namespace rmsprop
