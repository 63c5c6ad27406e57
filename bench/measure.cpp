#include "measure.hpp"

#include <omp.h>

#include <charconv>
#include <stdexcept>
#include <system_error>

#include "naive_loop.hpp"
#include "rmsprop/error.hpp"

namespace rmsprop::bench {

int parse_threads(const std::string& text) {
  int threads = -1;
  const char* end = text.data() + text.size();
  const auto [stop, problem] = std::from_chars(text.data(), end, threads);
  if (problem != std::errc{} || stop != end || threads < 0) {
    throw std::invalid_argument("--threads " + text +
                                ": must be a whole number >= 0 (0: every core)");
  }
  return threads;
}

Roofline measure_roofline(std::size_t n, int threads, int repeats) {
  std::unique_ptr<float[]> a(new float[n]), b(new float[n]), c(new float[n]);
  std::fill_n(a.get(), n, 1.0f), std::fill_n(b.get(), n, 2.0f), std::fill_n(c.get(), n, 3.0f);
  const long ln = long(n);
  float* A = a.get();
  const float *B = b.get(), *C = c.get();
  const double copy = median_seconds(repeats, [&] {
#pragma omp parallel for simd schedule(static) num_threads(threads)
    for (long i = 0; i < ln; ++i) A[i] = B[i];
  });
  const double triad = median_seconds(repeats, [&] {
#pragma omp parallel for simd schedule(static) num_threads(threads)
    for (long i = 0; i < ln; ++i) A[i] = B[i] + 3.0f * C[i];
  });
  float* Aw = a.get();
  const double inplace = median_seconds(repeats, [&] {
#pragma omp parallel for simd schedule(static) num_threads(threads)
    for (long i = 0; i < ln; ++i) Aw[i] = Aw[i] + 1e-7f * B[i];
  });
  return {8.0 * double(n) / copy / 1e9, 12.0 * double(n) / triad / 1e9,
          12.0 * double(n) / inplace / 1e9};
}

const std::vector<std::string>& variant_names() {
  static const std::vector<std::string> names = {
      "plain", "momentum", "centered", "centered+momentum", "nesterov", "bias-corrected"};
  return names;
}

rmsprop::Options variant_options(const std::string& name) {
  rmsprop::Options o;
  if (name == "momentum" || name == "centered+momentum" || name == "nesterov") o.momentum = 0.9;
  o.centered = name == "centered" || name == "centered+momentum";
  o.nesterov = name == "nesterov";
  o.bias_correction = name == "bias-corrected";
  if (std::find(variant_names().begin(), variant_names().end(), name) == variant_names().end()) {
    std::string known;
    for (const auto& n : variant_names()) known += " " + n;
    throw rmsprop::InvalidOption("variant '" + name + "': known are" + known);
  }
  return o;
}

std::size_t bytes_per_element(const rmsprop::Options& options, rmsprop::DType dtype) {
  const rmsprop::Variant v = rmsprop::variant_of(options);
  const std::size_t buffers = std::size_t(v.uses_square_avg()) + std::size_t(v.uses_grad_avg()) +
                              std::size_t(v.uses_momentum_buffer());
  return 3 * rmsprop::size_of(dtype) + 8 * buffers;
}

StepTiming time_step(const StepCase& c, int repeats) {
  const rmsprop::Options o = variant_options(c.variant);
  Buffers buf(c.tensors, c.elements, c.dtype);
  std::vector<rmsprop::TensorTask> tasks;
  for (std::size_t k = 0; k < c.tensors; ++k) {
    tasks.push_back({buf.param(k), buf.grad(k), buf.v[k].get(), buf.m[k].get(), buf.b[k].get(),
                     c.elements, rmsprop::coefficients(o, 1, o.lr)});
  }
  const auto variant = rmsprop::variant_of(o);
  const rmsprop::Precision precision{c.dtype, rmsprop::DType::f32, false, false};
  const rmsprop::KernelConfig config{c.threads, {}};
  StepTiming t{};
  t.seconds =
      median_seconds(repeats, [&] { rmsprop::fused_step(variant, precision, tasks, config); });
  std::vector<void*> p, g;
  std::vector<float*> sq, m, b;
  for (std::size_t k = 0; k < c.tensors; ++k) {
    p.push_back(buf.param(k)), g.push_back(buf.grad(k)), sq.push_back(buf.v[k].get());
    m.push_back(buf.m[k].get()), b.push_back(buf.b[k].get());
  }
  const int buffers = int((bytes_per_element(o, c.dtype) - 3 * rmsprop::size_of(c.dtype)) / 8);
  const int threads = c.threads ? c.threads : omp_get_max_threads();
  t.traffic_seconds = median_seconds(repeats, [&] {
    traffic_loop(buffers, c.dtype == rmsprop::DType::bf16, c.tensors, p.data(), g.data(), sq.data(),
                 m.data(), b.data(), long(c.elements), threads);
  });
  return t;
}

}  // namespace rmsprop::bench
