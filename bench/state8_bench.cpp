// rmsprop-state8-bench: 8-bit optimizer state against float32 (and bfloat16) state, measured
// in one run, alternated (docs/benchmarks.md "8-bit state"):
//   - step time of the fused kernel for plain and centered + momentum RMSProp over float32
//     parameters, 1 × 2^25 and 4096 × 8192, and each against its traffic-only loop: the same
//     buffers read and written, one add per value, in the step's chunks (naive_loop.hpp), the
//     speed its bytes allow on this machine;
//   - state bytes per value, and the peak resident memory of a process that makes a
//     10^8-parameter optimizer and takes one plain step, per state dtype.
//
//   rmsprop-state8-bench [--quick] [--threads N]
#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "kernels/storage.hpp"
#include "measure.hpp"
#include "naive_loop.hpp"
#include "rmsprop/kernel.hpp"
#include "rmsprop/optimizer.hpp"
#include "rmsprop/state8.hpp"

namespace {

using rmsprop::DType;

struct Aligned {
  std::unique_ptr<std::byte, decltype(&std::free)> data{nullptr, &std::free};
  explicit Aligned(std::size_t bytes)
      : data(static_cast<std::byte*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64)), &std::free) {
    std::memset(data.get(), 0, (bytes + 63) / 64 * 64);
  }
  void* get() const { return data.get(); }
};

// One tensor list with state in `state` dtype, values of a run in progress.
struct Case {
  std::vector<Aligned> param, grad, v, m, b;
  std::vector<rmsprop::TensorTask> tasks;
  Case(std::size_t tensors, std::size_t n, DType state, const rmsprop::Options& o) {
    std::uint64_t x = 7;
    auto uniform = [&x] {
      std::uint64_t z = (x += 0x9E3779B97F4A7C15ull);
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      return double((z ^ (z >> 31)) >> 11) * 0x1p-53;
    };
    std::vector<double> values(n);
    auto fill = [&](std::vector<Aligned>& list, DType dtype, bool square, double lo, double hi) {
      list.emplace_back(rmsprop::storage_bytes(dtype, n));
      for (double& value : values) value = lo + (hi - lo) * uniform();
      rmsprop::kernels::store_state(dtype, square, list.back().get(), values);
    };
    for (std::size_t k = 0; k < tensors; ++k) {
      fill(param, DType::f32, false, -1, 1), fill(grad, DType::f32, false, -1, 1);
      fill(v, state, true, 0.5, 1), fill(m, state, false, -0.1, 0.1);
      fill(b, state, false, -0.1, 0.1);
      rmsprop::TensorTask t{param[k].get(),
                            grad[k].get(),
                            v[k].get(),
                            m[k].get(),
                            b[k].get(),
                            n,
                            rmsprop::coefficients(o, 10, o.lr)};
      tasks.push_back(t);
      params.push_back(static_cast<float*>(param[k].get()));
      grads.push_back(static_cast<const float*>(grad[k].get()));
      for (auto [list, to] : {std::pair{&v, &states[0]}, {&m, &states[1]}, {&b, &states[2]}}) {
        to->push_back((*list)[k].get());
      }
    }
  }
  // the pointers state_traffic_loop takes
  std::vector<float*> params;
  std::vector<const float*> grads;
  std::vector<void*> states[3];
  void traffic(DType state, int buffers, int threads) const {
    void* const* lists[3] = {states[0].data(), states[1].data(), states[2].data()};
    const int width = state == DType::i8_block ? 1 : int(rmsprop::size_of(state));
    state_traffic_loop(buffers, width, tasks.size(), params.data(), grads.data(), lists,
                       long(tasks.front().size), threads);
  }
};

struct Variant {
  const char* name;
  bool centered_momentum;
  int buffers;
};

double bytes_per_element(DType state, int buffers) {
  const double state_bytes = state == DType::i8_block ? 1.0 + 4.0 / rmsprop::kState8Block
                                                      : double(rmsprop::size_of(state));
  return 4 + 4 + 4 + 2 * state_bytes * buffers;  // param read + write, grad read, state r + w
}

// Peak resident memory (MiB) of this process after it made a 10^8-parameter optimizer and
// took one plain step: what `rmsprop-state8-bench --peak STATE` prints. The parent runs that
// as a new process (a fork without exec would inherit OpenMP's threads' state and hang).
double peak_mib_of_one_step(rmsprop::StateDType state) {
  const std::size_t n = 100'000'000;
  std::vector<float> p(n, 0.5f), g(n, 0.25f);
  rmsprop::Options o;
  o.state_dtype = state;
  rmsprop::Optimizer opt({rmsprop::Param::of(p, g)}, o);
  opt.step();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;  // Linux: kilobytes
}

double peak_mib_in_a_new_process(const char* state) {
  const std::string command = "/proc/" + std::to_string(getpid()) + "/exe --peak " + state;
  FILE* child = popen(command.c_str(), "r");
  if (child == nullptr) return -1;
  double mib = -1;
  if (std::fscanf(child, "%lf", &mib) != 1) mib = -1;
  pclose(child);
  return mib;
}

}  // namespace

int main(int argc, char** argv) try {
  bool quick = false;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--threads" && i + 1 < argc) {
      threads = rmsprop::bench::parse_threads(argv[++i]);
    } else if (a == "--peak" && i + 1 < argc) {
      std::printf("%.0f\n", peak_mib_of_one_step(rmsprop::state_dtype_from_string(argv[++i])));
      return 0;
    } else {
      std::fprintf(stderr, "usage: rmsprop-state8-bench [--quick] [--threads N]\n");
      return 2;
    }
  }
  const int repeats = quick ? 3 : 9;
  if (threads <= 0) threads = omp_get_max_threads();
  const rmsprop::bench::Roofline roof = rmsprop::bench::measure_roofline(1u << 25, threads, 5);
  std::printf(
      "memory (STREAM-like, for reference): copy %.1f GB/s, triad %.1f GB/s, in place "
      "%.1f GB/s; %d threads, %s kernels\n",
      roof.copy_gbs, roof.triad_gbs, roof.inplace_gbs, threads,
      std::string(rmsprop::to_string(rmsprop::default_simd_target())).c_str());

  struct Shape {
    const char* name;
    std::size_t tensors, elements;
  };
  const Shape shapes[] = {{"1 x 2^25", 1, std::size_t(1) << 25}, {"4096 x 8192", 4096, 8192}};
  const Variant variants[] = {{"plain", false, 1}, {"centered+momentum", true, 3}};
  const DType states[] = {DType::f32, DType::bf16, DType::i8_block};
  std::printf("\n%-12s %-18s %-10s %9s %8s %10s %10s %11s\n", "shape", "variant", "state",
              "ms/step", "bytes/el", "vs float32", "traffic ms", "of traffic");
  for (const Shape& s : shapes) {
    for (const Variant& v : variants) {
      rmsprop::Options o;
      o.lr = 1e-4;
      if (v.centered_momentum) o.centered = true, o.momentum = 0.9;
      const rmsprop::Variant rule = rmsprop::variant_of(o);
      std::vector<std::unique_ptr<Case>> cases;
      for (DType state : states)
        cases.push_back(std::make_unique<Case>(s.tensors, s.elements, state, o));
      // alternated: one step and one traffic-only loop of each state dtype per round (on the
      // same buffers), the median of the rounds
      std::vector<std::vector<double>> times(std::size(states)), traffic(std::size(states));
      auto seconds = [](auto&& f) {
        const auto start = rmsprop::bench::Clock::now();
        f();
        return std::chrono::duration<double>(rmsprop::bench::Clock::now() - start).count();
      };
      for (int r = 0; r < repeats + 1; ++r) {
        for (std::size_t k = 0; k < std::size(states); ++k) {
          const rmsprop::Precision p{DType::f32, states[k], false, false};
          const double t = seconds([&] {
            rmsprop::fused_step(rule, p, cases[k]->tasks, {threads, {}});
          });
          const double u = seconds([&] { cases[k]->traffic(states[k], v.buffers, threads); });
          if (r > 0) times[k].push_back(t), traffic[k].push_back(u);  // round 0 warms up
        }
      }
      auto median = [](std::vector<double>& x) {
        std::sort(x.begin(), x.end());
        return x[x.size() / 2];
      };
      double f32_time = 0;
      for (std::size_t k = 0; k < std::size(states); ++k) {
        const double t = median(times[k]), u = median(traffic[k]);
        if (k == 0) f32_time = t;
        std::printf("%-12s %-18s %-10s %9.2f %8.2f %9.2fx %10.2f %10.0f%%\n", s.name, v.name,
                    std::string(rmsprop::to_string(states[k])).c_str(), t * 1e3,
                    bytes_per_element(states[k], v.buffers), f32_time / t, u * 1e3, 100 * u / t);
      }
    }
  }

  std::printf("\nstate bytes per value (incl. scales): float32 4, bfloat16 2, int8 %.4f\n",
              double(rmsprop::state8_bytes(1u << 20)) / double(1u << 20));
  if (!quick) {
    std::printf("peak resident memory, 10^8 float32 parameters + gradients, one plain step:\n");
    for (const char* state : {"float32", "bfloat16", "int8"}) {
      std::printf("  %-9s %7.0f MiB\n", state, peak_mib_in_a_new_process(state));
    }
  }
  return 0;
} catch (const std::exception& e) {  // bad input, e.g. RMSPROP_SIMD naming no target here
  std::fprintf(stderr, "rmsprop-state8-bench: %s\n", e.what());
  return 1;
}
