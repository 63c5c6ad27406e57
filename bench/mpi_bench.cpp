// rmsprop::mpi under mpirun: step time of DataParallel and ShardedOptimizer beside the plain
// Optimizer's step on the same parameters (no communication), measured in the same run; bytes
// each rank sends per step against the theory; optimizer state per rank.
//
//   mpirun -np N rmsprop-mpi-bench [VALUES] [STEPS]     (default 2^24 float32 values, 20 steps)
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "rmsprop/mpi.hpp"

using namespace rmsprop;

namespace {

struct Model {
  std::vector<std::vector<float>> w, g;
  Model(std::size_t values, int tensors) {
    for (int t = 0; t < tensors; ++t) {
      w.emplace_back(values / std::size_t(tensors), 0.5f);
      g.emplace_back(values / std::size_t(tensors), 0.0f);
    }
  }
  std::vector<Param> params() {
    std::vector<Param> out;
    for (std::size_t t = 0; t < w.size(); ++t) {
      out.push_back(Param::of(std::span(w[t]), std::span(g[t])));
    }
    return out;
  }
  void fill(int rank, int step) {
    for (auto& t : g) {
      for (std::size_t i = 0; i < t.size(); ++i)
        t[i] = float((i + std::size_t(rank + step)) % 97) * 1e-3f;
    }
  }
};

// The median seconds of `steps` calls of `step` (each after a barrier), the slowest rank's.
template <class Step>
double median_seconds(Model& m, int steps, Step&& step) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::vector<double> times;
  for (int s = -2; s < steps; ++s) {  // two warm-up steps
    m.fill(rank, s);
    MPI_Barrier(MPI_COMM_WORLD);
    const auto start = std::chrono::steady_clock::now();
    step();
    const double t =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (s >= 0) times.push_back(t);
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  double median = times[times.size() / 2];
  MPI_Allreduce(MPI_IN_PLACE, &median, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return median;
}

}  // namespace

int main(int argc, char** argv) {
  mpi::Session session(&argc, &argv);
  const auto comm = mpi::Communicator::world();
  const std::size_t values = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : std::size_t(1) << 24;
  const int steps = argc > 2 ? std::atoi(argv[2]) : 20;
  const int n = comm.size();
  Options options;  // plain RMSProp, float32 state: one 4-byte buffer per value
  Model local(values, 8), dp_model(values, 8), sharded_model(values, 8);
  Optimizer alone({{local.params(), options}});
  mpi::DataParallel dp({{dp_model.params(), options}}, comm);
  mpi::ShardedOptimizer sharded({{sharded_model.params(), options}}, comm);
  const double t_alone = median_seconds(local, steps, [&] { alone.step(); });
  const double t_dp = median_seconds(dp_model, steps, [&] { dp.step(); });
  const mpi::StepTraffic dp_traffic = dp.last_traffic();
  const double t_sharded = median_seconds(sharded_model, steps, [&] { sharded.step(); });
  const mpi::StepTraffic sh_traffic = sharded.last_traffic();
  if (comm.rank() == 0) {
    const double bytes = double(values) * 4, share = double(n - 1) / n;
    std::printf("%d ranks, %zu float32 values in 8 tensors, plain RMSProp, median of %d steps\n", n,
                values, steps);
    std::printf("%-14s %10s %10s %14s %14s %14s\n", "", "step ms", "vs alone", "sent MB/step",
                "theory MB", "state MB/rank");
    std::printf("%-14s %10.2f %10s %14s %14s %14.1f\n", "alone", 1e3 * t_alone, "1.00x", "-", "-",
                bytes / 1e6);
    std::printf("%-14s %10.2f %9.2fx %14.2f %14.2f %14.1f\n", "data parallel", 1e3 * t_dp,
                t_alone / t_dp,
                double(dp_traffic.gradient_bytes_sent + dp_traffic.gather_bytes_sent) / 1e6,
                2 * share * bytes / 1e6, bytes / 1e6);
    std::printf("%-14s %10.2f %9.2fx %14.2f %14.2f %14.1f\n", "sharded", 1e3 * t_sharded,
                t_alone / t_sharded,
                double(sh_traffic.gradient_bytes_sent + sh_traffic.gather_bytes_sent) / 1e6,
                2 * share * bytes / 1e6,
                double(sharded.shard_end() - sharded.shard_begin()) * 4 / 1e6);
  }
  return 0;
}
