#include <cmath>
#include <random>
#include <string>

#include "../output.hpp"
#include "experiment.hpp"
#include "rmsprop/minimize.hpp"

namespace rmsprop::cli {
namespace {

// Mean squared error of y ≈ w·x + b over mini-batches.
struct LeastSquares {
  const std::vector<double>& x;
  const std::vector<double>& y;
  std::size_t NumFunctions() const { return x.size(); }
  double EvaluateWithGradient(std::span<const double> p, std::size_t begin, std::span<double> g,
                              std::size_t batch) const {
    double f = 0;
    for (std::size_t i = begin; i < begin + batch; ++i) {
      const double r = p[0] * x[i] + p[1] - y[i];
      f += r * r / double(x.size());
      g[0] += 2 * r * x[i] / double(x.size());
      g[1] += 2 * r / double(x.size());
    }
    return f;
  }
};

}  // namespace

// The seed's regression: one feature x ~ N(0, 1), y = w·x + b + N(0, 0.1²), 800 training and
// 200 test points; RMSProp (mini-batches of 32) against the closed-form least-squares fit.
ExperimentOutput linreg(const std::filesystem::path& dir, bool plots) {
  std::mt19937_64 rng(42);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uniform(10, 50);
  const double w = uniform(rng), b = uniform(rng) / 50 - 0.5;
  std::vector<double> x, y, tx, ty;
  for (int i = 0; i < 1000; ++i) {
    const double xi = normal(rng), yi = w * xi + b + 0.1 * normal(rng);
    (i < 800 ? x : tx).push_back(xi);
    (i < 800 ? y : ty).push_back(yi);
  }
  // Closed form over the training points.
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  const double n = double(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    sx += x[i], sy += y[i], sxx += x[i] * x[i], sxy += x[i] * y[i];
  const double w_ls = (n * sxy - sx * sy) / (n * sxx - sx * sx), b_ls = (sy - w_ls * sx) / n;
  std::vector<double> p = {0.0, 0.0};
  MinimizeOptions mo;
  mo.optimizer.lr = 0.5;
  mo.optimizer.alpha = 0.9;
  mo.batch_size = 32;
  mo.shuffle = false;
  mo.max_iterations = 0;
  mo.tolerance = 1e-12;
  mo.schedule = Schedule::exponential(0.995);
  const auto r = minimize(LeastSquares{x, y}, p, mo);
  double test_mse = 0;
  for (std::size_t i = 0; i < tx.size(); ++i) {
    test_mse += (p[0] * tx[i] + p[1] - ty[i]) * (p[0] * tx[i] + p[1] - ty[i]) / double(tx.size());
  }
  std::vector<std::vector<double>> rows;
  for (std::size_t i = 0; i < tx.size(); ++i) rows.push_back({tx[i], ty[i], p[0] * tx[i] + p[1]});
  write_csv(dir / "linreg.csv", {"x", "y", "fitted"}, rows);
  if (plots) {
    plot({"linreg", (dir / "linreg.csv").string(), (dir / "linreg.png").string(),
          "y = " + number(p[0]) + " x + " + number(p[1])});
  }
  ExperimentOutput out;
  out.findings = {
      {"true_w", w},      {"true_b", b},      {"least_squares_w", w_ls}, {"least_squares_b", b_ls},
      {"fitted_w", p[0]}, {"fitted_b", p[1]}, {"test_mse", test_mse},    {"steps", r.iterations}};
  out.lines = {"fitted y = " + number(p[0]) + " x + " + number(p[1]) +
                   " (least squares: " + number(w_ls) + " x + " + number(b_ls) + ")",
               "test MSE " + number(test_mse) + " (noise variance 0.01) after " +
                   std::to_string(r.iterations) + " steps"};
  out.holds = std::abs(p[0] - w_ls) < 1e-3 && std::abs(p[1] - b_ls) < 1e-3 && test_mse < 0.02;
  return out;
}

}  // namespace rmsprop::cli
