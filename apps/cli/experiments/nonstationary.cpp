#include <cmath>
#include <string>

#include "../output.hpp"
#include "experiment.hpp"
#include "rmsprop/options.hpp"

namespace rmsprop::cli {

// The seed's non-stationary test: gradient 100 for 100 steps, then 1 for 100 steps. AdaGrad
// divides by the root of the sum of all squared gradients, so after the switch its effective
// learning rate |Δθ|/|g| stays near lr/1000; RMSProp's average forgets (ρ = 0.9) and its rate
// recovers to about lr.
ExperimentOutput nonstationary(const std::filesystem::path& dir, bool plots) {
  constexpr double kLr = 0.01;
  std::vector<double> grads(100, 100.0);
  grads.insert(grads.end(), 100, 1.0);
  Options rms = Options::from_flavor(Flavor::hinton);  // ρ = 0.9, ε inside the root
  rms.lr = kLr;
  rms.eps = 1e-12;
  const Options ada = Options::adagrad(kLr, 1e-12);
  const auto r = effective_lrs(rms, grads), a = effective_lrs(ada, grads);
  std::vector<std::vector<double>> rows;
  for (std::size_t t = 0; t < grads.size(); ++t)
    rows.push_back({double(t + 1), grads[t], a[t], r[t]});
  write_csv(dir / "nonstationary.csv", {"step", "gradient", "adagrad", "rmsprop"}, rows);
  if (plots) {
    plot({"series", (dir / "nonstationary.csv").string(), (dir / "nonstationary.png").string(),
          "Non-stationary gradients (100 for 100 steps, then 1)", "step",
          "effective learning rate |dθ|/|g|", "log", "adagrad,rmsprop"});
  }
  ExperimentOutput out;
  const double ada_end = a.back(), rms_end = r.back();
  out.findings = {{"lr", kLr},
                  {"adagrad_effective_lr_end", ada_end},
                  {"rmsprop_effective_lr_end", rms_end},
                  {"rmsprop_over_adagrad", rms_end / ada_end}};
  out.lines = {
      "effective learning rate |dθ|/|g| after the switch to gradient 1 (lr " + number(kLr) + "):",
      "  AdaGrad: " + number(ada_end) + " (about lr/sqrt(100·100² + 100))",
      "  RMSProp: " + number(rms_end) + " (recovered to about lr)",
      "  RMSProp's is " + number(rms_end / ada_end) + "x AdaGrad's"};
  out.holds = rms_end > 0.5 * kLr && ada_end < kLr / 500;
  return out;
}

}  // namespace rmsprop::cli
