// The scalar reference kernel: the rule applied element by element, the specification that
// every faster kernel is compared against.
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "apply.hpp"
#include "check.hpp"
#include "rmsprop/error.hpp"
#include "rmsprop/kernel.hpp"
#include "variant_table.hpp"

namespace rmsprop {
namespace {

struct CodecTag {};  // this file's own out-of-line codec (NOTE: [8-bit codec out of line])
using Codec = kernels::OutOfLineCodec<CodecTag>;

template <Variant kV, Precision kP>
void reference_task(const TensorTask& task) {
  using K = kernels::ElementKernel<kV, kernels::element_precision(kP)>;
  const auto c = Coefficients<typename K::C>::cast(task.coefficients);
  if constexpr (kP.state == DType::i8_block) {
    // never the rule's root for the encoder: the specification takes each square root itself
    // (NOTE: [8-bit encoder takes the rule's root])
    kernels::state8_range<kV, kP, Codec, false, false>(
        task, 0, task.size, kernels::State8Schedule{},
        [&](const typename K::Buffers& b, std::uint32_t count, std::uint32_t first, auto) {
          for (std::uint32_t k = 0; k < count; ++k) {
            K::apply(b, k, first + k, c, task.rounding_seed);
          }
        });
  } else {
    const auto buffers = K::buffers(task);
    for (std::size_t i = 0; i < task.size; ++i) {
      K::apply(buffers, i, std::uint32_t(i), c, task.rounding_seed);
    }
  }
}

using TaskFn = void (*)(const TensorTask&);

struct MakeReference {
  template <Variant kV, Precision kP>
  static constexpr TaskFn entry() {
    return &reference_task<kV, kP>;
  }
};

constexpr auto kTable = kernels::make_precision_table<MakeReference>();

void check_task(const Variant& v, const Precision& p, const TensorTask& task, std::size_t index) {
  auto need = [&](bool needed, const void* buffer, const char* name) {
    if (needed && buffer == nullptr && task.size > 0) {
      throw InvalidArgument("tensor " + std::to_string(index) + ": " + name +
                            " is null but this variant needs it");
    }
  };
  need(true, task.param, "param");
  need(true, task.grad, "grad");
  need(v.uses_square_avg(), task.square_avg, "square_avg");
  need(v.uses_grad_avg(), task.grad_avg, "grad_avg");
  need(v.uses_momentum_buffer(), task.momentum_buffer, "momentum_buffer");
  need(p.master_weights, task.master, "master");
  if (p.state == DType::i8_block) {  // the block scales are floats after the codes
    for (auto [buffer, name] : {std::pair{task.square_avg, "square_avg"},
                                {task.grad_avg, "grad_avg"},
                                {task.momentum_buffer, "momentum_buffer"}}) {
      if (reinterpret_cast<std::uintptr_t>(buffer) % alignof(float) != 0) {
        throw InvalidArgument("tensor " + std::to_string(index) + ": 8-bit " + name +
                              " is not 4-byte aligned (its block scales are float32)");
      }
    }
  }
}

}  // namespace

void kernels::check_tasks(const Variant& variant, const Precision& precision,
                          std::span<const TensorTask> tasks) {
  for (std::size_t i = 0; i < tasks.size(); ++i) check_task(variant, precision, tasks[i], i);
}

void reference_step(const Variant& variant, const Precision& precision,
                    std::span<const TensorTask> tasks) {
  const Variant v = kernels::canonical(variant);
  check_precision(precision);
  kernels::check_tasks(v, precision, tasks);
  const TaskFn fn = kTable[kernels::index_of(precision)][kernels::index_of(v)];
  for (const TensorTask& task : tasks) fn(task);
}

}  // namespace rmsprop
