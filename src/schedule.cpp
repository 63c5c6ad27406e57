#include "rmsprop/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "rmsprop/error.hpp"
#include "text.hpp"

namespace rmsprop {
namespace {

void require(bool ok, const std::string& what, double value, const char* rule) {
  if (!ok)
    throw InvalidOption("invalid schedule " + what + "=" + format_double(value) + ": " + rule);
}

}  // namespace

Schedule Schedule::constant() {
  return Schedule([](double base, std::int64_t) { return base; }, "constant");
}

Schedule Schedule::step(std::int64_t step_size, double gamma) {
  require(step_size > 0, "step_size", double(step_size), "must be > 0");
  require(std::isfinite(gamma) && gamma >= 0, "gamma", gamma, "must be finite and >= 0");
  return Schedule(
      [=](double base, std::int64_t t) { return base * std::pow(gamma, double(t / step_size)); },
      "step");
}

Schedule Schedule::exponential(double gamma) {
  require(std::isfinite(gamma) && gamma >= 0, "gamma", gamma, "must be finite and >= 0");
  return Schedule([=](double base, std::int64_t t) { return base * std::pow(gamma, double(t)); },
                  "exponential");
}

Schedule Schedule::cosine(std::int64_t t_max, double eta_min) {
  require(t_max > 0, "t_max", double(t_max), "must be > 0");
  require(std::isfinite(eta_min) && eta_min >= 0, "eta_min", eta_min, "must be finite and >= 0");
  return Schedule(
      [=](double base, std::int64_t t) {
        double progress = double(std::min(t, t_max)) / double(t_max);
        return eta_min + (base - eta_min) * (1 + std::cos(std::numbers::pi * progress)) / 2;
      },
      "cosine");
}

Schedule Schedule::warmup(std::int64_t steps, double start_factor, Schedule after) {
  require(steps >= 0, "warmup steps", double(steps), "must be >= 0");
  require(std::isfinite(start_factor) && start_factor >= 0 && start_factor <= 1,
          "warmup start_factor", start_factor, "must be in [0, 1]");
  std::string name = "warmup+" + after.name();
  return Schedule(
      [=, after = std::move(after)](double base, std::int64_t t) {
        if (t >= steps) return after.lr(base, t - steps);
        return base * (start_factor + (1 - start_factor) * double(t) / double(steps));
      },
      std::move(name));
}

Schedule Schedule::custom(Function function, std::string name) {
  if (!function) throw InvalidOption("custom schedule: the function is empty");
  return Schedule(std::move(function), std::move(name));
}

double Schedule::lr(double base_lr, std::int64_t t) const {
  double lr = function_(base_lr, t);
  if (!std::isfinite(lr) || lr < 0) {
    throw InvalidOption("schedule '" + name_ + "' gave lr=" + format_double(lr) + " at step " +
                        std::to_string(t) + " (base lr " + format_double(base_lr) +
                        "); it must be finite and >= 0");
  }
  return lr;
}

}  // namespace rmsprop
