// Learning-rate schedules: values against torch.optim.lr_scheduler's formulas, bad arguments.
#include "rmsprop/schedule.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "rmsprop/error.hpp"

namespace rmsprop {
namespace {

TEST(Schedule, Constant) {
  const Schedule s = Schedule::constant();
  for (std::int64_t t : {0, 1, 1000}) EXPECT_EQ(s.lr(0.1, t), 0.1);
}

TEST(Schedule, StepLikeTorchStepLR) {
  const Schedule s = Schedule::step(3, 0.1);
  const double expected[] = {1, 1, 1, 0.1, 0.1, 0.1, 0.01};
  for (std::int64_t t = 0; t < 7; ++t) EXPECT_DOUBLE_EQ(s.lr(1.0, t), expected[t]) << t;
}

TEST(Schedule, ExponentialLikeTorchExponentialLR) {
  const Schedule s = Schedule::exponential(0.9);
  EXPECT_DOUBLE_EQ(s.lr(2.0, 0), 2.0);
  EXPECT_DOUBLE_EQ(s.lr(2.0, 3), 2.0 * 0.729);
}

TEST(Schedule, CosineLikeTorchCosineAnnealingLRThenHolds) {
  const Schedule s = Schedule::cosine(10, 0.01);
  EXPECT_DOUBLE_EQ(s.lr(1.0, 0), 1.0);
  EXPECT_DOUBLE_EQ(s.lr(1.0, 5), 0.01 + 0.99 * 0.5);
  EXPECT_NEAR(s.lr(1.0, 3), 0.01 + 0.99 * (1 + std::cos(std::numbers::pi * 0.3)) / 2, 1e-15);
  EXPECT_DOUBLE_EQ(s.lr(1.0, 10), 0.01);
  EXPECT_DOUBLE_EQ(s.lr(1.0, 50), 0.01);
}

TEST(Schedule, WarmupRampsLinearlyThenHandsOver) {
  const Schedule s = Schedule::warmup(4, 0.2, Schedule::exponential(0.5));
  EXPECT_DOUBLE_EQ(s.lr(1.0, 0), 0.2);
  EXPECT_DOUBLE_EQ(s.lr(1.0, 2), 0.6);
  EXPECT_DOUBLE_EQ(s.lr(1.0, 4), 1.0);  // the wrapped schedule at its t = 0
  EXPECT_DOUBLE_EQ(s.lr(1.0, 6), 0.25);
  EXPECT_EQ(s.name(), "warmup+exponential");
}

TEST(Schedule, CustomFunctionAndItsChecks) {
  const Schedule s = Schedule::custom([](double base, std::int64_t t) { return base / (1 + t); });
  EXPECT_DOUBLE_EQ(s.lr(1.0, 3), 0.25);
  const Schedule nan = Schedule::custom([](double, std::int64_t) { return std::nan(""); }, "mine");
  try {
    nan.lr(0.1, 7);
    FAIL();
  } catch (const InvalidOption& e) {
    EXPECT_STREQ(e.what(),
                 "schedule 'mine' gave lr=nan at step 7 (base lr 0.1); it must be finite and >= 0");
  }
  EXPECT_THROW(Schedule::custom(nullptr), InvalidOption);
}

TEST(Schedule, BadArgumentsAreNamed) {
  auto message = [](auto make) {
    try {
      make();
    } catch (const InvalidOption& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(message([] { Schedule::step(0, 0.1); }), "invalid schedule step_size=0: must be > 0");
  EXPECT_EQ(message([] { Schedule::exponential(-1); }),
            "invalid schedule gamma=-1: must be finite and >= 0");
  EXPECT_EQ(message([] { Schedule::cosine(-5); }), "invalid schedule t_max=-5: must be > 0");
  EXPECT_EQ(message([] { Schedule::warmup(10, 1.5); }),
            "invalid schedule warmup start_factor=1.5: must be in [0, 1]");
}

}  // namespace
}  // namespace rmsprop
