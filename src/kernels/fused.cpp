// The fused kernel's front end: picks the SIMD target, cuts the tasks into chunks and deals
// them to threads.
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "check.hpp"
#include "fused_table.hpp"
#include "rmsprop/error.hpp"
#include "rmsprop/kernel.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif
#if defined(RMSPROP_X86_TARGETS)
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

// NOTE: [8-bit schedule by CPU]
// Two choices of the 8-bit-state loop (NOTE: [8-bit pipeline], apply.hpp) measured best on
// different CPUs; neither changes a bit of the result (each block's codes depend only on its
// values), so each is picked per CPU at run time, and RMSPROP_STATE8_PREFETCH=0|1 and
// RMSPROP_STATE8_PIECE=64|256 override them, to measure both on another CPU:
// - Prefetch: the short pieces between codec calls keep too few loads in flight on their own,
//   and prefetching the parameters and gradients two blocks ahead took one thread on an Intel
//   Xeon (AVX-512) from 1.0 to 0.78 ns per value at 2^25 values. On an AMD EPYC (Zen 4, AVX-512)
//   the same prefetches made it slower: plain, 2^25 values, 0.80-0.90 ns per value with them,
//   0.57-0.60 without (one thread), ~0.42 against ~0.32 (two threads); centered + momentum, two
//   threads, 0.83-0.90 against 0.78-0.79 (docs/benchmarks.md, 2026-12-06). The hardware's own
//   prefetcher there does better alone. So AMD CPUs go without. The codes' prefetch cost
//   nothing measurable on either and stays.
// - Piece: the rule runs over a block in pieces with codec work in between so that the codec
//   hides under the divider, the rule's bound (one division and one square root per value).
//   On the Xeon pieces of 64 were best (32 and 128 ~12% slower in cache). An AMD EPYC Zen 5
//   (family 0x1A) divides twice as fast (float32 state, plain, in cache: 0.14 ns per value
//   against 0.31 on Zen 4 and 0.37 on the Xeon), so there is little to hide under and the calls
//   per piece cost more than they overlap: whole blocks (256) took plain from 0.36 to 0.30-0.31 ns
//   per value in cache and centered + momentum from 0.91-0.93 to 0.75-0.76, one pinned thread
//   (docs/benchmarks.md, 2026-12-06, later session). So AMD family 0x1A and later run whole blocks
//   (the AVX-512 kernel only: the others have no copy of that loop, see fused_impl.inl); Zen 4
//   keeps 64 (not measured otherwise).

// A two-valued setting from the environment: none where `name` is unset, else whether it is
// `on`; any other value throws, naming it.
std::optional<bool> two_valued_setting(const char* name, const char* off, const char* on) {
  const char* forced = std::getenv(name);
  if (forced == nullptr) return std::nullopt;
  const std::string value = forced;
  if (value == off || value == on) return value == on;
  throw InvalidOption(std::string(name) + "=" + value + ": must be " + off + " or " + on);
}

#if defined(RMSPROP_X86_TARGETS)
// CPUID's family: the base field, plus the extended one where the base is 0xF (AMD, Intel).
unsigned cpu_family() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  const unsigned base = (a >> 8) & 0xF;
  return base == 0xF ? base + ((a >> 20) & 0xFF) : base;
}
#endif

kernels::State8Schedule pick_state8_schedule() {
  kernels::State8Schedule schedule{false, true};  // as measured best on the Xeon
#if defined(RMSPROP_X86_TARGETS)
  __builtin_cpu_init();
  const bool amd = __builtin_cpu_is("amd");
  schedule.prefetch_values = !amd;
  schedule.whole_blocks = amd && cpu_family() >= 0x1A;
#endif
  if (auto forced = two_valued_setting("RMSPROP_STATE8_PREFETCH", "0", "1")) {
    schedule.prefetch_values = *forced;
  }
  if (auto forced = two_valued_setting("RMSPROP_STATE8_PIECE", "64", "256")) {
    schedule.whole_blocks = *forced;
  }
  return schedule;
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

const kernels::State8Schedule& kernels::state8_schedule() {
  static const State8Schedule kSchedule = pick_state8_schedule();
  return kSchedule;
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
  // read here, before any thread starts: a bad RMSPROP_STATE8_* setting throws to the caller
  if (precision.state == DType::i8_block) kernels::state8_schedule();

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
