// The pieces of the optimizer-step benchmarks shared by rmsprop-bench and `rmsprop bench`:
// timing, realistic buffers, the machine's memory roofline, and one step of ours per case.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rmsprop/half.hpp"
#include "rmsprop/kernel.hpp"

namespace rmsprop::bench {

using Clock = std::chrono::steady_clock;

// The median of `repeats` timed calls of f (after one untimed warm-up call), in seconds.
template <class F>
double median_seconds(int repeats, F f) {
  std::vector<double> t;
  f();  // warm up: pages touched, threads started
  for (int i = 0; i < repeats; ++i) {
    auto start = Clock::now();
    f();
    t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Realistic values (random parameters and gradients, state of a run in progress): constant
// data drives centered variants into v − m² ≈ 0 and subnormal slow paths.
struct Buffers {
  std::size_t tensors, elements;
  std::vector<std::unique_ptr<float[]>> p, g, v, m, b;     // float32
  std::vector<std::unique_ptr<std::uint16_t[]>> p16, g16;  // the same p and g in bfloat16
  Buffers(std::size_t tensors_, std::size_t elements_, rmsprop::DType dtype)
      : tensors(tensors_), elements(elements_) {
    std::uint64_t x = 12345;
    auto uniform = [&x] {  // splitmix64 -> [0, 1)
      std::uint64_t z = (x += 0x9E3779B97F4A7C15ull);
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      return float((z ^ (z >> 31)) >> 40) * 0x1p-24f;
    };
    auto make = [&](std::vector<std::unique_ptr<float[]>>& list, float lo, float hi) {
      list.emplace_back(new float[elements]);
      for (std::size_t i = 0; i < elements; ++i) list.back()[i] = lo + (hi - lo) * uniform();
    };
    for (std::size_t k = 0; k < tensors; ++k) {
      make(p, -1, 1), make(g, -1, 1), make(v, 0.5, 1), make(m, -0.1, 0.1), make(b, -0.1, 0.1);
      if (dtype != rmsprop::DType::bf16) continue;
      for (auto* list : {&p16, &g16}) {
        const float* source = (list == &p16 ? p : g).back().get();
        list->emplace_back(new std::uint16_t[elements]);
        for (std::size_t i = 0; i < elements; ++i) {
          list->back()[i] = rmsprop::to_bfloat16(source[i]).bits;
        }
      }
      p.back().reset(), g.back().reset();  // bfloat16 runs must not touch float32 copies
    }
  }
  void* param(std::size_t k) { return p16.empty() ? (void*)p[k].get() : (void*)p16[k].get(); }
  void* grad(std::size_t k) { return g16.empty() ? (void*)g[k].get() : (void*)g16[k].get(); }
};

// The memory roofline, float32, all threads: STREAM-like copy and triad (bytes counted as
// STREAM does: 8 and 12 per element, though their stores also read the line first), and an
// in-place update a[i] += s·b[i] (read, then write the line just read: 12 bytes moved per
// element, no hidden read-for-ownership). These describe the machine; each case's fraction
// of roofline is against its own traffic-only loop (naive_loop.cpp: the same buffers read and
// written, one add each, built -march=native), the speed its memory access allows.
struct Roofline {
  double copy_gbs, triad_gbs, inplace_gbs;
};

Roofline measure_roofline(std::size_t n, int threads, int repeats);

// A `--threads` argument: a whole number >= 0 (0: every core); anything else throws
// std::invalid_argument naming it.
int parse_threads(const std::string& text);

// A step case: `tensors` tensors of `elements` each, parameters and gradients of `dtype`
// (float32 or bfloat16), float32 state.
struct StepCase {
  std::string variant;  // a name from variant_names()
  rmsprop::DType dtype = rmsprop::DType::f32;
  std::size_t tensors = 1, elements = 0;
  int threads = 0;
};

// plain, momentum, centered, centered+momentum, nesterov, bias-corrected.
const std::vector<std::string>& variant_names();
// The options of a named variant; throws InvalidOption listing the names.
rmsprop::Options variant_options(const std::string& name);
// Bytes one step moves per element: parameter read and written, gradient read, and each state
// buffer the variant uses read and written.
std::size_t bytes_per_element(const rmsprop::Options& options, rmsprop::DType dtype);

struct StepTiming {
  double seconds;          // median seconds per step of ours
  double traffic_seconds;  // the same reads and writes with no math: the case's roofline
};
StepTiming time_step(const StepCase& c, int repeats);

}  // namespace rmsprop::bench
