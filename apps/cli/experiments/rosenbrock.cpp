#include <cmath>
#include <string>

#include "../output.hpp"
#include "experiment.hpp"
#include "rmsprop/minimize.hpp"

namespace rmsprop::cli {
namespace {

struct Rosenbrock {
  double Evaluate(std::span<const double> x) const {
    return (1 - x[0]) * (1 - x[0]) + 100 * (x[1] - x[0] * x[0]) * (x[1] - x[0] * x[0]);
  }
  void Gradient(std::span<const double> x, std::span<double> g) const {
    g[0] = -2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] * x[0]);
    g[1] = 200 * (x[1] - x[0] * x[0]);
  }
};

}  // namespace

// Five optimizers from (−1.5, 2), 3000 steps each, each with the largest of the usual
// learning rates it stays stable with (SGD must be small: the valley's walls are steep).
ExperimentOutput rosenbrock(const std::filesystem::path& dir, bool plots) {
  constexpr std::size_t kSteps = 3000;
  Options centered;
  centered.lr = 1e-2, centered.centered = true;
  Options plain;
  plain.lr = 1e-2;
  const std::vector<std::pair<std::string, Options>> contenders = {
      {"SGD", Options::sgd(2e-4)},
      {"AdaGrad", Options::adagrad(0.5)},
      {"RMSProp", plain},
      {"centered RMSProp", centered},
      {"Adam", Options::adam(1e-2)}};
  std::vector<std::vector<double>> rows;  // optimizer index, step, x, y, distance
  ExperimentOutput out;
  double sgd_distance = 0, best_adaptive = 1e300;
  for (std::size_t k = 0; k < contenders.size(); ++k) {
    std::vector<double> x = {-1.5, 2.0};
    MinimizeOptions mo;
    mo.optimizer = contenders[k].second;
    mo.max_iterations = kSteps;
    mo.tolerance = -1;
    auto distance = [](std::span<const double> p) { return std::hypot(p[0] - 1, p[1] - 1); };
    rows.push_back({double(k), 0, x[0], x[1], distance(x)});
    minimize(Rosenbrock{}, x, mo, [&](const MinimizeState<double>& s) {
      rows.push_back({double(k), double(s.iteration), s.coordinates[0], s.coordinates[1],
                      distance(s.coordinates)});
      return false;
    });
    const double d = distance(x);
    out.findings["final_distance"][contenders[k].first] = d;
    out.lines.push_back(contenders[k].first + ": distance to (1, 1) after " +
                        std::to_string(kSteps) + " steps " + number(d));
    if (k == 0) sgd_distance = d;
    if (k >= 2) best_adaptive = std::min(best_adaptive, d);
  }
  write_csv(dir / "rosenbrock.csv", {"optimizer", "step", "x", "y", "distance"}, rows);
  if (plots) {
    std::string names;
    for (const auto& c : contenders) names += (names.empty() ? "" : ",") + c.first;
    plot({"rosenbrock", (dir / "rosenbrock.csv").string(), (dir / "rosenbrock.png").string(),
          names});
  }
  out.holds = best_adaptive < sgd_distance;
  return out;
}

}  // namespace rmsprop::cli
