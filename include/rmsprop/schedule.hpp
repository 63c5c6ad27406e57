// Learning-rate schedules: the learning rate of a step from a group's base learning rate.
//
// `lr(base_lr, t)` is the rate used by the step that follows t completed steps (t = 0 for the
// first step), matching torch.optim.lr_scheduler stepped once per optimizer step.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace rmsprop {

class Schedule {
 public:
  using Function = std::function<double(double base_lr, std::int64_t t)>;

  // η_t = base.
  static Schedule constant();
  // η_t = base·γ^⌊t/step_size⌋ (torch StepLR).
  static Schedule step(std::int64_t step_size, double gamma);
  // η_t = base·γ^t (torch ExponentialLR).
  static Schedule exponential(double gamma);
  // η_t = η_min + (base − η_min)·(1 + cos(π·min(t, T)/T))/2 (torch CosineAnnealingLR, no restart).
  static Schedule cosine(std::int64_t t_max, double eta_min = 0);
  // Linear warm-up from base·start_factor to base over `steps` steps, then `after` from t = 0.
  static Schedule warmup(std::int64_t steps, double start_factor, Schedule after = constant());
  // Any function of (base_lr, t); its result must be finite and ≥ 0 (checked at each step).
  static Schedule custom(Function function, std::string name = "custom");

  double lr(double base_lr, std::int64_t t) const;
  const std::string& name() const { return name_; }

 private:
  Schedule(Function function, std::string name)
      : function_(std::move(function)), name_(std::move(name)) {}
  Function function_;
  std::string name_;
};

}  // namespace rmsprop
