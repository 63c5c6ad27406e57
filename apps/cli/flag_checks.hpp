// Checks for flag values that CLI11 alone would take wrongly: an integer out of its type's range
// (CLI11 saturates or wraps it: --seed -1 became 2^64 - 1), an empty value (--lr "" read as not
// given), more threads than the machine can use.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>

namespace rmsprop::cli {

// The whole text an integer in [lo, hi], written in decimal.
CLI::Validator integer_in(std::int64_t lo, std::int64_t hi);
// The whole text an unsigned 64-bit integer in decimal (no sign).
CLI::Validator unsigned_integer();
// Any text but the empty one.
CLI::Validator non_empty();
// A thread count: 0 (all cores) up to kThreadsPerCore times this machine's cores.
CLI::Validator thread_count();
inline constexpr int kThreadsPerCore = 4;

}  // namespace rmsprop::cli
