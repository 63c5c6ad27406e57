// The fused kernel's front end: picks the SIMD target, cuts the tasks into chunks and deals
// them to threads.
#include <cstdlib>
#include <string>
#include <vector>

#include "check.hpp"
#include "fused_table.hpp"
#include "rmsprop/error.hpp"
#include "rmsprop/kernel.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif
#if defined(RMSPROP_X86_TARGETS) && defined(__clang__)
#include <cpuid.h>
#endif

namespace rmsprop {
namespace {

struct Chunk {
  const TensorTask* task;
  std::size_t begin, end;
};

const kernels::FusedTable& table_for(SimdTarget target) {
  switch (target) {
#if defined(RMSPROP_X86_TARGETS)
    case SimdTarget::avx512:
      return kernels::avx512::table();
    case SimdTarget::avx2:
      return kernels::avx2::table();
#endif
    default:
      return kernels::baseline::table();
  }
}

#if defined(RMSPROP_X86_TARGETS)
// The x86-64 psABI levels the SIMD files are compiled for. GCC 12 knows them by name; clang 14
// (the fuzz build's compiler) only single features, and not F16C, LZCNT or MOVBE: those three
// are read from CPUID.
bool cpu_is_x86_64_v3() {
#if defined(__clang__) && __clang_major__ < 15
  unsigned a = 0, b = 0, c = 0, d = 0;
  const bool f16c_movbe = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) && (c & bit_MOVBE);
  const bool lzcnt = __get_cpuid(0x80000001u, &a, &b, &c, &d) && (c & bit_LZCNT);
  return f16c_movbe && lzcnt && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
#else
  return __builtin_cpu_supports("x86-64-v3");
#endif
}

bool cpu_is_x86_64_v4() {
#if defined(__clang__) && __clang_major__ < 15
  return cpu_is_x86_64_v3() && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512cd") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
  return __builtin_cpu_supports("x86-64-v4");
#endif
}
#endif

std::vector<SimdTarget> detect_targets() {
  std::vector<SimdTarget> targets = {SimdTarget::baseline};
#if defined(RMSPROP_X86_TARGETS)
  __builtin_cpu_init();
  if (cpu_is_x86_64_v3()) targets.push_back(SimdTarget::avx2);
  if (cpu_is_x86_64_v4()) targets.push_back(SimdTarget::avx512);
#endif
  return targets;
}

SimdTarget pick_default() {
  const auto targets = available_simd_targets();
  SimdTarget best = targets.back();
  if (const char* forced = std::getenv("RMSPROP_SIMD")) {
    for (SimdTarget t : targets) {
      if (to_string(t) == forced) return t;
    }
    std::string valid;
    for (SimdTarget t : targets) valid += (valid.empty() ? "" : ", ") + std::string(to_string(t));
    throw InvalidOption("RMSPROP_SIMD=" + std::string(forced) +
                        " is not a target this build and CPU have (" + valid + ")");
  }
  return best;
}

// NOTE: [8-bit prefetch by CPU]
// The 8-bit-state loop's short pieces between codec calls keep too few loads in flight on their
// own, and prefetching the parameters and gradients two blocks ahead took one thread on an Intel
// Xeon (AVX-512) from 1.0 to 0.78 ns per value at 2^25 values. On an AMD EPYC (Zen 4, AVX-512)
// the same prefetches made it slower: plain, 2^25 values, 0.80-0.90 ns per value with them,
// 0.57-0.60 without (one thread), ~0.42 against ~0.32 (two threads); centered + momentum, two
// threads, 0.83-0.90 against 0.78-0.79 (docs/benchmarks.md, 2026-12-06). The hardware's own
// prefetcher there does better alone. So AMD CPUs go without, every other CPU as measured on
// the Xeon; RMSPROP_STATE8_PREFETCH=0 or 1 overrides, to measure both on another CPU. The
// codes' prefetch cost nothing measurable on either and stays. Either way the same bits.
bool pick_state8_prefetch() {
  if (const char* forced = std::getenv("RMSPROP_STATE8_PREFETCH")) {
    const std::string value = forced;
    if (value == "0" || value == "1") return value == "1";
    throw InvalidOption("RMSPROP_STATE8_PREFETCH=" + value + ": must be 0 or 1");
  }
#if defined(RMSPROP_X86_TARGETS)
  __builtin_cpu_init();
  return !__builtin_cpu_is("amd");
#else
  return true;
#endif
}

// Below this many elements in all, threads cost more than they save.
constexpr std::size_t kParallelThreshold = 4 * kChunkElements;

}  // namespace

std::string_view to_string(SimdTarget target) {
  switch (target) {
    case SimdTarget::baseline:
      return "baseline";
    case SimdTarget::avx2:
      return "avx2";
    case SimdTarget::avx512:
      return "avx512";
  }
  return "?";
}

std::span<const SimdTarget> available_simd_targets() {
  static const std::vector<SimdTarget> kTargets = detect_targets();
  return kTargets;
}

SimdTarget default_simd_target() {
  static const SimdTarget kDefault = pick_default();
  return kDefault;
}

bool kernels::state8_prefetches_values() {
  static const bool kPrefetch = pick_state8_prefetch();
  return kPrefetch;
}

void fused_step(const Variant& variant, const Precision& precision,
                std::span<const TensorTask> tasks, const KernelConfig& config) {
  const Variant v = kernels::canonical(variant);
  check_precision(precision);
  kernels::check_tasks(v, precision, tasks);
  if (config.threads < 0) {
    throw InvalidArgument("threads=" + std::to_string(config.threads) + ": must be >= 0");
  }
  const SimdTarget target = config.target.value_or(default_simd_target());
  bool known = false;
  for (SimdTarget t : available_simd_targets()) known = known || t == target;
  if (!known) {
    throw InvalidArgument("SIMD target " + std::string(to_string(target)) +
                          " is not available on this CPU or build");
  }
  const kernels::RangeFn fn = table_for(target)[kernels::index_of(precision)][kernels::index_of(v)];
  // read here, before any thread starts: a bad RMSPROP_STATE8_PREFETCH throws to the caller
  if (precision.state == DType::i8_block) kernels::state8_prefetches_values();

  std::vector<Chunk> chunks;
  std::size_t total = 0;
  for (const TensorTask& t : tasks) {
    for (std::size_t begin = 0; begin < t.size; begin += kChunkElements) {
      chunks.push_back({&t, begin, std::min(t.size, begin + kChunkElements)});
    }
    total += t.size;
  }
  const long n = long(chunks.size());
  int threads = config.threads;
#if defined(_OPENMP)
  if (threads == 0) threads = omp_get_max_threads();
#endif
  if (total < kParallelThreshold || threads <= 1) {
    for (const Chunk& c : chunks) fn(*c.task, c.begin, c.end);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(threads)
  for (long i = 0; i < n; ++i) fn(*chunks[i].task, chunks[i].begin, chunks[i].end);
}

}  // namespace rmsprop
