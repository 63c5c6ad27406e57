// Google Benchmark for the kernels: fused (per SIMD target) and reference, one tensor and many,
// float32. Bytes/s counts the memory the step must move (see docs/benchmarks.md).
#include <benchmark/benchmark.h>

#include <vector>

#include "rmsprop/kernel.hpp"

namespace {

using rmsprop::Options;

struct Case {
  Options options;
  std::size_t buffers;  // state buffers
};

Case make_case(int variant) {
  Options o;
  if (variant >= 1) o.momentum = 0.9;
  if (variant >= 2) o.centered = true;
  return {o, std::size_t(1 + variant)};
}

void run(benchmark::State& state, bool fused, rmsprop::SimdTarget target) {
  const Case c = make_case(int(state.range(0)));
  const std::size_t tensors = std::size_t(state.range(1)), n = std::size_t(state.range(2));
  std::vector<std::vector<float>> bufs(5 * tensors, std::vector<float>(n, 0.5f));
  std::vector<rmsprop::TensorTask> tasks;
  for (std::size_t k = 0; k < tensors; ++k) {
    tasks.push_back({bufs[5 * k].data(), bufs[5 * k + 1].data(), bufs[5 * k + 2].data(),
                     bufs[5 * k + 3].data(), bufs[5 * k + 4].data(), n,
                     rmsprop::coefficients(c.options, 1, 0.01)});
  }
  const auto v = rmsprop::variant_of(c.options);
  for (auto _ : state) {
    if (fused) {
      rmsprop::fused_step(v, rmsprop::DType::f32, tasks, {0, target});
    } else {
      rmsprop::reference_step(v, rmsprop::DType::f32, tasks);
    }
    benchmark::ClobberMemory();
  }
  const double elements = double(tensors * n);
  state.SetItemsProcessed(std::int64_t(state.iterations() * elements));
  state.SetBytesProcessed(std::int64_t(state.iterations() * elements * 4 * (3 + 2 * c.buffers)));
}

void args(benchmark::internal::Benchmark* b) {
  for (int variant : {0, 1, 2}) {
    b->Args({variant, 1, 1 << 25});
    b->Args({variant, 4096, 8192});
  }
  b->ArgNames({"variant", "tensors", "elements"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

void BM_reference(benchmark::State& s) {
  run(s, false, rmsprop::SimdTarget::baseline);
}
BENCHMARK(BM_reference)->Apply(args);

void register_fused() {
  for (rmsprop::SimdTarget t : rmsprop::available_simd_targets()) {
    benchmark::RegisterBenchmark(("BM_fused/" + std::string(rmsprop::to_string(t))).c_str(),
                                 [t](benchmark::State& s) { run(s, true, t); })
        ->Apply(args);
  }
}
const int kRegistered = (register_fused(), 0);

}  // namespace
