#include "experiment.hpp"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "rmsprop/optimizer.hpp"

namespace rmsprop::cli {

ExperimentOutput nonstationary(const std::filesystem::path& dir, bool plots);
ExperimentOutput scale_invariance(const std::filesystem::path& dir, bool plots);
ExperimentOutput bias_correction(const std::filesystem::path& dir, bool plots);
ExperimentOutput ema_memory(const std::filesystem::path& dir, bool plots);
ExperimentOutput rosenbrock(const std::filesystem::path& dir, bool plots);
ExperimentOutput linreg(const std::filesystem::path& dir, bool plots);

const std::vector<Experiment>& experiments() {
  static const std::vector<Experiment> all = {
      {"nonstationary",
       "100 steps of gradient 100, then 100 of gradient 1: AdaGrad's effective step stays tiny, "
       "RMSProp's recovers",
       nonstationary},
      {"rosenbrock",
       "SGD, AdaGrad, RMSProp, centered RMSProp and Adam on the Rosenbrock valley from (-1.5, 2)",
       rosenbrock},
      {"scale-invariance",
       "the loss multiplied by 1e-4, 1, 1e4: RMSProp's steps are unchanged, SGD's scale with it",
       scale_invariance},
      {"bias-correction",
       "E[v_t] = (1 - rho^t) E[g^2]: uncorrected first steps are too large; corrected ones are not",
       bias_correction},
      {"ema-memory", "the accumulator remembers about 1/(1 - rho) steps (impulse response)",
       ema_memory},
      {"linreg", "the seed's linear regression: RMSProp fits the least-squares line", linreg},
  };
  return all;
}

std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", value);
  return text;
}

void write_csv(const std::filesystem::path& path, const std::vector<std::string>& header,
               const std::vector<std::vector<double>>& rows) {
  std::ofstream out(path);
  for (std::size_t i = 0; i < header.size(); ++i) out << (i ? "," : "") << header[i];
  out << "\n";
  char number[32];
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      std::snprintf(number, sizeof number, "%.10g", row[i]);
      out << (i ? "," : "") << number;
    }
    out << "\n";
  }
  if (!out) throw std::runtime_error(path.string() + ": cannot write");
}

std::vector<double> effective_lrs(const Options& options, const std::vector<double>& grads) {
  std::vector<double> theta = {0.0}, g = {0.0}, out;
  Optimizer opt({Param::of(theta, g)}, options);
  opt.set_kernel_config({1, {}});
  for (double grad : grads) {
    const double before = theta[0];
    g[0] = grad;
    opt.step();
    out.push_back(std::abs(theta[0] - before) / std::abs(grad));
  }
  return out;
}

}  // namespace rmsprop::cli
