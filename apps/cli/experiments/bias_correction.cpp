#include <cmath>
#include <random>
#include <string>

#include "../output.hpp"
#include "experiment.hpp"
#include "rmsprop/optimizer.hpp"

namespace rmsprop::cli {

// The seed's E[v_t] = (1 − ρ^t)·E[g²]: starting from v₀ = 0 the average underestimates the
// second moment early, so uncorrected first steps are too large (by 1/√(1 − ρ^t)); dividing
// by (1 − ρ^t) removes that. Measured over 20000 independent gradient streams g ~ N(1, 1)
// (E[g²] = 2), ρ = 0.99.
ExperimentOutput bias_correction(const std::filesystem::path& dir, bool plots) {
  constexpr int kStreams = 20000, kSteps = 50;
  constexpr double kRho = 0.99, kSecondMoment = 2.0;
  std::mt19937_64 rng(12345);
  std::normal_distribution<double> gradient(1.0, 1.0);
  std::vector<double> theta(kStreams, 0.0), g(kStreams);
  std::vector<double> theta_bc(kStreams, 0.0), g_bc(kStreams);
  Options plain;
  plain.alpha = kRho, plain.lr = 1e-3, plain.eps = 1e-12;
  Options corrected = plain;
  corrected.bias_correction = true;
  Optimizer a({Param::of(theta, g)}, plain), b({Param::of(theta_bc, g_bc)}, corrected);
  a.set_kernel_config({1, {}}), b.set_kernel_config({1, {}});
  std::vector<std::vector<double>> rows;
  double first_step_ratio = 0, worst_theory_error = 0;
  for (int t = 1; t <= kSteps; ++t) {
    for (int k = 0; k < kStreams; ++k) g[std::size_t(k)] = g_bc[std::size_t(k)] = gradient(rng);
    const std::vector<double> before = theta, before_bc = theta_bc;
    a.step(), b.step();
    double v_mean = 0, step = 0, step_bc = 0;
    const auto v = a.square_avg<double>(0, 0);
    for (int k = 0; k < kStreams; ++k) {
      v_mean += v[std::size_t(k)] / kStreams;
      step += std::abs(theta[std::size_t(k)] - before[std::size_t(k)]) / kStreams;
      step_bc += std::abs(theta_bc[std::size_t(k)] - before_bc[std::size_t(k)]) / kStreams;
    }
    const double theory = 1 - std::pow(kRho, t);
    worst_theory_error =
        std::max(worst_theory_error, std::abs(v_mean / kSecondMoment - theory) / theory);
    if (t == 1) first_step_ratio = step / step_bc;
    rows.push_back(
        {double(t), v_mean / kSecondMoment, theory, step / plain.lr, step_bc / plain.lr});
  }
  write_csv(dir / "bias_correction.csv",
            {"step", "measured_v_over_Eg2", "theory_1_minus_rho_t", "uncorrected_step_over_lr",
             "corrected_step_over_lr"},
            rows);
  if (plots) {
    plot({"series", (dir / "bias_correction.csv").string(), (dir / "bias_correction.png").string(),
          "Bias correction, rho 0.99 (mean of 20000 gradient streams)", "step", "ratio", "log",
          "measured_v_over_Eg2,theory_1_minus_rho_t,uncorrected_step_over_lr,corrected_step_over_"
          "lr"});
  }
  ExperimentOutput out;
  out.findings = {{"rho", kRho},
                  {"v_vs_theory_max_relative_error", worst_theory_error},
                  {"first_step_uncorrected_over_corrected", first_step_ratio},
                  {"expected_first_step_ratio", 1 / std::sqrt(1 - kRho)}};
  out.lines = {"E[v_t]/E[g²] follows 1 − ρ^t within " + number(100 * worst_theory_error) +
                   "% over the first " + std::to_string(kSteps) + " steps",
               "first step without correction is " + number(first_step_ratio) +
                   "x the corrected one (1/sqrt(1 − ρ) = " + number(1 / std::sqrt(1 - kRho)) + ")"};
  out.holds = worst_theory_error < 0.05 && std::abs(first_step_ratio - 10.0) < 0.05;
  return out;
}

}  // namespace rmsprop::cli
