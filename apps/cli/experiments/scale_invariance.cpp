#include <algorithm>
#include <cmath>
#include <string>

#include "../output.hpp"
#include "experiment.hpp"
#include "rmsprop/optimizer.hpp"

namespace rmsprop::cli {
namespace {

// θ's trajectory minimizing c·½·Σ aᵢ(θᵢ − 1)² from 0 for `steps` steps.
std::vector<std::vector<double>> trajectory(const Options& options, double c, int steps) {
  const std::vector<double> a = {1.0, 10.0, 100.0};
  std::vector<double> theta(3, 0.0), g(3);
  Optimizer opt({Param::of(theta, g)}, options);
  opt.set_kernel_config({1, {}});
  std::vector<std::vector<double>> out;
  for (int t = 0; t < steps; ++t) {
    for (std::size_t i = 0; i < 3; ++i) g[i] = c * a[i] * (theta[i] - 1.0);
    opt.step();
    out.push_back(theta);
  }
  return out;
}

double max_relative_difference(const std::vector<std::vector<double>>& x,
                               const std::vector<std::vector<double>>& y) {
  double worst = 0;
  for (std::size_t t = 0; t < x.size(); ++t) {
    for (std::size_t i = 0; i < x[t].size(); ++i) {
      worst = std::max(worst, std::abs(x[t][i] - y[t][i]) / std::max(std::abs(y[t][i]), 1e-300));
    }
  }
  return worst;
}

}  // namespace

// RMSProp divides the gradient by its own root mean square: multiplying the loss by c leaves
// every step unchanged (up to ε, here 1e-12 against gradients ≥ 1e-4). SGD's steps scale by c:
// 1e-4 barely moves, 1e4 diverges.
ExperimentOutput scale_invariance(const std::filesystem::path& dir, bool plots) {
  constexpr int kSteps = 200;
  const double scales[] = {1e-4, 1.0, 1e4};
  Options rms;
  rms.lr = 0.01;
  rms.eps = 1e-12;
  Options sgd = Options::sgd(0.005);
  sgd.non_finite = NonFinitePolicy::propagate;  // let c = 1e4 diverge to inf, as SGD does
  std::vector<std::vector<std::vector<double>>> r, s;
  for (double c : scales)
    r.push_back(trajectory(rms, c, kSteps)), s.push_back(trajectory(sgd, c, kSteps));
  std::vector<std::vector<double>> rows;
  for (int t = 0; t < kSteps; ++t) {
    std::vector<double> row = {double(t + 1)};
    for (std::size_t k = 0; k < 3; ++k) row.push_back(r[k][std::size_t(t)][1]);
    for (std::size_t k = 0; k < 3; ++k)
      row.push_back(std::min(1e6, std::abs(s[k][std::size_t(t)][1])));
    rows.push_back(row);
  }
  write_csv(
      dir / "scale_invariance.csv",
      {"step", "rmsprop_c1e-4", "rmsprop_c1", "rmsprop_c1e4", "sgd_c1e-4", "sgd_c1", "sgd_c1e4"},
      rows);
  if (plots) {
    plot({"series", (dir / "scale_invariance.csv").string(),
          (dir / "scale_invariance.png").string(),
          "Loss scaled by c: θ₂ (target 1) under RMSProp and |θ₂| under SGD", "step", "θ₂", "log",
          "rmsprop_c1e-4,rmsprop_c1,rmsprop_c1e4,sgd_c1e-4,sgd_c1,sgd_c1e4"});
  }
  const double rms_spread =
      std::max(max_relative_difference(r[0], r[1]), max_relative_difference(r[2], r[1]));
  const double sgd_small = std::abs(s[0].back()[1] - 1.0), sgd_large = std::abs(s[2].back()[1]);
  ExperimentOutput out;
  out.findings = {{"rmsprop_max_relative_difference", rms_spread},
                  {"sgd_c1e-4_distance_to_optimum", sgd_small},
                  {"sgd_c1e4_abs_theta", sgd_large},
                  {"sgd_c1_distance_to_optimum", std::abs(s[1].back()[1] - 1.0)}};
  out.lines = {"RMSProp, c = 1e-4 / 1 / 1e4: trajectories differ by at most " + number(rms_spread) +
                   " (relative)",
               "SGD, c = 1e-4: still " + number(sgd_small) + " from the optimum after " +
                   std::to_string(kSteps) + " steps; c = 1e4: |θ| = " + number(sgd_large) +
                   " (diverged)"};
  out.holds = rms_spread < 1e-6 && sgd_small > 0.5 && !(sgd_large < 1e3);
  return out;
}

}  // namespace rmsprop::cli
