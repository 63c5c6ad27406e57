#include <cmath>
#include <string>

#include "../output.hpp"
#include "experiment.hpp"
#include "rmsprop/optimizer.hpp"

namespace rmsprop::cli {

// The accumulator v_t = ρ·v_{t−1} + (1 − ρ)·g_t² is an exponential moving average. Feed one
// impulse (g = 1 once, then 0) and read v: its total, divided by its first value, is the number
// of steps it remembers — 1/(1 − ρ).
ExperimentOutput ema_memory(const std::filesystem::path& dir, bool plots) {
  const double rhos[] = {0.9, 0.99, 0.999};
  constexpr int kSteps = 20'000;
  std::vector<std::vector<double>> responses;
  ExperimentOutput out;
  out.holds = true;
  for (double rho : rhos) {
    std::vector<double> theta = {0.0}, g = {1.0};
    Options o;
    o.alpha = rho;
    Optimizer opt({Param::of(theta, g)}, o);
    opt.set_kernel_config({1, {}});
    std::vector<double> v;
    for (int t = 0; t < kSteps; ++t) {
      opt.step();
      v.push_back(opt.square_avg<double>(0, 0)[0]);
      g[0] = 0.0;
    }
    double total = 0;
    for (double x : v) total += x;
    const double memory = total / v[0], expected = 1 / (1 - rho);
    out.findings["memory_rho_" + number(rho)] = {{"measured", memory}, {"expected", expected}};
    out.lines.push_back("rho " + number(rho) + ": remembers " + number(memory) +
                        " steps (1/(1 − rho) = " + number(expected) + ")");
    out.holds = out.holds && std::abs(memory - expected) / expected < 0.01;
    responses.push_back(v);
  }
  std::vector<std::vector<double>> rows;
  for (int t = 0; t < 3000; ++t) {
    rows.push_back({double(t + 1), responses[0][std::size_t(t)] / responses[0][0],
                    responses[1][std::size_t(t)] / responses[1][0],
                    responses[2][std::size_t(t)] / responses[2][0]});
  }
  write_csv(dir / "ema_memory.csv", {"step", "rho_0.9", "rho_0.99", "rho_0.999"}, rows);
  if (plots) {
    plot({"series", (dir / "ema_memory.csv").string(), (dir / "ema_memory.png").string(),
          "Impulse response of the square average", "step", "v_t / v_1", "log",
          "rho_0.9,rho_0.99,rho_0.999"});
  }
  return out;
}

}  // namespace rmsprop::cli
