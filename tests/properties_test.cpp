// Properties from the seeds' theory and worked examples computed by hand from each
// framework's formula (docs/flavors.md), each a test.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "rmsprop/optimizer.hpp"
#include "test_util.hpp"

namespace rmsprop {
namespace {

// Runs `steps` steps of `options` on one float64 parameter vector, with gradients from
// `gradient(t, j)`, and returns θ after every step.
template <class Gradient>
std::vector<std::vector<double>> run(const Options& options, std::vector<double> theta, int steps,
                                     Gradient gradient) {
  std::vector<double> grad(theta.size());
  Optimizer opt({Param::of(theta, grad)}, options);
  std::vector<std::vector<double>> out;
  for (int t = 1; t <= steps; ++t) {
    for (std::size_t j = 0; j < grad.size(); ++j) grad[j] = gradient(t, j);
    opt.step();
    out.push_back(theta);
  }
  return out;
}

TEST(Properties, WorkedNumbersOfSemanticsMd) {
  // η=0.016, ρ=0.9, ε=1e-3, μ=0.9, g = [0.5, −1.0, 1e-3, 0]: Δθ after step 1.
  const std::vector<double> g = {0.5, -1.0, 1e-3, 0};
  struct Expected {
    Flavor flavor;
    std::vector<double> delta;
  } expected[] = {
      {Flavor::torch, {-0.050278, +0.050437, -0.012156, 0}},
      {Flavor::tf1, {-0.008314, +0.015992, -0.000017, 0}},
      {Flavor::timm_tf, {-0.008314, +0.015992, -0.000017, 0}},
      {Flavor::keras, {-0.049614, +0.050345, -0.000506, 0}},
  };
  for (const auto& e : expected) {
    Options o = Options::from_flavor(e.flavor);
    o.lr = 0.016, o.alpha = 0.9, o.eps = 1e-3, o.momentum = 0.9;
    const auto theta =
        run(o, std::vector<double>(4, 0.0), 1, [&](int, std::size_t j) { return g[j]; });
    for (std::size_t j = 0; j < 4; ++j) {
      EXPECT_NEAR(theta[0][j], e.delta[j], 5e-7) << to_string(e.flavor) << " element " << j;
    }
  }
}

TEST(Properties, ScaleInvarianceGradientsTimesCGiveTheSameSteps) {
  Options o;
  o.eps = 1e-30;  // negligible against every |g|
  testing::SplitMix64 rng(7);
  std::vector<double> noise(400 * 3);
  for (double& x : noise) x = rng.uniform();
  auto g = [&](double c) {
    return [&, c](int t, std::size_t j) { return c * noise[(t - 1) * 3 + j]; };
  };
  const auto reference = run(o, {0.5, -0.5, 1.0}, 400, g(1.0));
  for (double c : {1e-4, 1e4}) {
    const auto scaled = run(o, {0.5, -0.5, 1.0}, 400, g(c));
    for (std::size_t t = 0; t < reference.size(); ++t) {
      for (std::size_t j = 0; j < 3; ++j) {
        EXPECT_NEAR(scaled[t][j], reference[t][j], 1e-12) << "c=" << c << " step " << t + 1;
      }
    }
  }
  // SGD is not scale invariant: the same check must fail for it.
  const Options sgd = Options::sgd(1e-3);
  const auto sgd_ref = run(sgd, {0.5, -0.5, 1.0}, 10, g(1.0));
  const auto sgd_scaled = run(sgd, {0.5, -0.5, 1.0}, 10, g(1e4));
  EXPECT_GT(std::abs(sgd_scaled[9][0] - sgd_ref[9][0]), 1.0);
}

TEST(Properties, ConstantGradientDrivesSquareAvgToGSquared) {
  const double g = 0.37;
  std::vector<double> theta = {0.0}, grad = {g};
  Optimizer opt({Param::of(theta, grad)}, Options{});
  for (int t = 0; t < 3000; ++t) opt.step();
  EXPECT_NEAR(opt.square_avg<double>(0, 0)[0], g * g, 1e-12);
}

TEST(Properties, WithBiasCorrectionTheFirstStepHasMagnitudeLr) {
  for (double g : {1e-6, 0.3, -5.0, 1e4}) {
    Options o = Options::from_flavor(Flavor::optax);
    o.bias_correction = true, o.eps_in_sqrt = false, o.eps = 1e-30, o.lr = 0.01;
    const auto theta = run(o, {0.0}, 1, [&](int, std::size_t) { return g; });
    EXPECT_NEAR(std::abs(theta[0][0]), 0.01, 1e-15) << "g=" << g;
    // Without it the first step is lr/sqrt(1−ρ): ~3.16 lr for ρ = 0.9.
    o.bias_correction = false;
    const auto raw = run(o, {0.0}, 1, [&](int, std::size_t) { return g; });
    EXPECT_NEAR(std::abs(raw[0][0]), 0.01 / std::sqrt(0.1), 1e-12) << "g=" << g;
  }
}

// The seeds' non-stationary test: 100 steps of g = 100, then 100 steps of g = 1.
TEST(Properties, AdaGradStallsWhereRMSPropRecovers) {
  const double lr = 0.01, rho = 0.9;
  auto g = [](int t, std::size_t) { return t <= 100 ? 100.0 : 1.0; };
  Options rms = Options::from_flavor(Flavor::torch);
  rms.lr = lr, rms.alpha = rho;
  const auto r = run(rms, {0.0}, 200, g);
  const auto a = run(Options::adagrad(lr), {0.0}, 200, g);
  auto step = [](const auto& theta, int t) { return std::abs(theta[t - 1][0] - theta[t - 2][0]); };
  // AdaGrad: Σg² ≥ 100·100², so every later step is below lr·1/1000.
  for (int t = 101; t <= 200; ++t) EXPECT_LT(step(a, t), lr / 999) << "step " << t;
  // RMSProp: v decays by ρ per step, so the step grows by 1/sqrt(ρ)^k until it is back at ~lr;
  // one memory 1/(1−ρ) = 10 steps multiplies it by about e^(1/2).
  const double growth = step(r, 131) / step(r, 121);
  EXPECT_NEAR(growth, std::pow(rho, -5.0), 0.05);
  // After k steps of g = 1: v = 100²·ρ^k + (1 − ρ^k), so the step is lr/sqrt(v): 0.89·lr at k =
  // 100.
  const double v = 1e4 * std::pow(rho, 100) + (1 - std::pow(rho, 100));
  EXPECT_NEAR(step(r, 200), lr / std::sqrt(v), 1e-3 * lr);
  EXPECT_GT(step(r, 200), 0.85 * lr);
  EXPECT_GT(step(r, 200), 500 * step(a, 200));
}

TEST(Properties, CenteredDenominatorTracksTheVarianceNotTheSecondMoment) {
  const double mean = 5.0, sigma = 0.5;
  testing::SplitMix64 rng(11);
  std::vector<double> theta = {0.0}, grad = {0.0};
  Options o;
  o.centered = true, o.lr = 0, o.alpha = 0.999;  // lr 0: only the statistics move
  Optimizer opt({Param::of(theta, grad)}, o);
  double sum_sq = 0;
  const int steps = 20000;
  for (int t = 0; t < steps; ++t) {
    // uniform on [-1, 1) has variance 1/3
    grad[0] = mean + sigma * std::sqrt(3.0) * rng.uniform();
    sum_sq += grad[0] * grad[0];
    opt.step();
  }
  const double v = opt.square_avg<double>(0, 0)[0], m = opt.grad_avg<double>(0, 0)[0];
  EXPECT_NEAR(v - m * m, sigma * sigma, 0.1 * sigma * sigma);  // the variance, ~0.25
  EXPECT_NEAR(v, mean * mean + sigma * sigma, 1.0);            // the second moment, ~25.25
}

TEST(Properties, AdamWithBeta1ZeroIsBiasCorrectedRMSPropWithEpsOutside) {
  // optax's equivalence, scale_by_rms(eps_in_sqrt=False, bias_correction=True) == adam(b1=0).
  Options rms = Options::from_flavor(Flavor::optax);
  rms.lr = 0.01, rms.alpha = 0.999, rms.eps = 1e-8, rms.eps_in_sqrt = false,
  rms.bias_correction = true;
  const Options adam = Options::adam(0.01, 0.0, 0.999, 1e-8);
  testing::SplitMix64 rng(3);
  std::vector<double> noise(300 * 4);
  for (double& x : noise) x = rng.uniform();
  auto g = [&](int t, std::size_t j) { return noise[(t - 1) * 4 + j]; };
  const auto a = run(rms, {1, 2, 3, 4}, 300, g), b = run(adam, {1, 2, 3, 4}, 300, g);
  for (std::size_t t = 0; t < a.size(); ++t) {
    for (std::size_t j = 0; j < 4; ++j) EXPECT_NEAR(a[t][j], b[t][j], 1e-13);
  }
}

TEST(Properties, SeedVariantIsAdamWithoutBiasCorrection) {
  // r = ρr + (1−ρ)g; s = σs + (1−σ)g²; θ −= η·r/sqrt(s + ε)
  const double rho = 0.9, sigma = 0.99, eta = 0.01, eps = 1e-8;
  Options o = Options::adam(eta, rho, sigma, eps, /*bias_correction=*/false);
  o.eps_in_sqrt = true;
  double r = 0, s = 0, theta = 0.3;
  const auto ours = run(o, {0.3}, 50, [](int t, std::size_t) { return std::sin(t * 0.7); });
  for (int t = 1; t <= 50; ++t) {
    const double g = std::sin(t * 0.7);
    r = rho * r + (1 - rho) * g;
    s = sigma * s + (1 - sigma) * g * g;
    theta -= eta * r / std::sqrt(s + eps);
    EXPECT_NEAR(ours[t - 1][0], theta, 1e-14) << "step " << t;
  }
}

// Every knob changes the result (an accepted knob that does nothing is a bug).
TEST(Properties, EveryKnobChangesTheTrajectory) {
  const Options base = [] {
    Options o;
    o.momentum = 0.5;  // so that nesterov and lr_in_momentum have something to act on
    return o;
  }();
  struct Knob {
    const char* name;
    void (*change)(Options&);
  } knobs[] = {
      {"lr", [](Options& o) { o.lr = 0.02; }},
      {"alpha", [](Options& o) { o.alpha = 0.9; }},
      {"grad_avg_decay", [](Options& o) { o.centered = true, o.grad_avg_decay = 0.5; }},
      {"eps", [](Options& o) { o.eps = 0.1; }},
      {"eps_in_sqrt", [](Options& o) { o.eps = 0.01, o.eps_in_sqrt = true; }},
      {"initial_accumulator_value", [](Options& o) { o.initial_accumulator_value = 1; }},
      {"momentum", [](Options& o) { o.momentum = 0.9; }},
      {"nesterov", [](Options& o) { o.nesterov = true; }},
      {"centered", [](Options& o) { o.centered = true; }},
      {"bias_correction", [](Options& o) { o.bias_correction = true; }},
      {"weight_decay", [](Options& o) { o.weight_decay = 0.1; }},
      {"decoupled_weight_decay",
       [](Options& o) { o.weight_decay = 0.1, o.decoupled_weight_decay = true; }},
      {"weight_decay_uses_lr",
       [](Options& o) {
         o.weight_decay = 0.1, o.decoupled_weight_decay = true, o.weight_decay_uses_lr = false;
       }},
      {"maximize", [](Options& o) { o.maximize = true; }},
      {"algorithm", [](Options& o) { o.algorithm = Algorithm::adagrad; }},
  };
  // Storage and policy knobs change how values are kept or when a step runs, not the math:
  // tested in precision_test (state_dtype, master_weights, stochastic_rounding), state8_test
  // (state_dtype=int8, state8_min_size), optimizer_test (non_finite) and below (lr_in_momentum).
  const std::set<std::string> elsewhere = {"state_dtype", "master_weights", "stochastic_rounding",
                                           "non_finite",  "lr_in_momentum", "state8_min_size"};
  for (const OptionInfo& info : option_table()) {
    const bool has_knob = std::any_of(std::begin(knobs), std::end(knobs),
                                      [&](const Knob& k) { return k.name == info.name; });
    EXPECT_TRUE(has_knob || elsewhere.count(std::string(info.name)))
        << "option " << info.name << " has no test that it changes the result";
  }
  auto g = [](int t, std::size_t j) { return std::cos(0.3 * t + double(j)) + 0.2; };
  for (const Knob& k : knobs) {
    Options with = base, reference = base;
    k.change(with);
    // compare against the same options minus this knob (for the ones that need a companion)
    if (std::string(k.name) == "eps_in_sqrt") reference.eps = 0.01;
    if (std::string(k.name) == "grad_avg_decay") reference.centered = true;
    if (std::string(k.name) == "decoupled_weight_decay") reference.weight_decay = 0.1;
    if (std::string(k.name) == "weight_decay_uses_lr") {
      reference.weight_decay = 0.1, reference.decoupled_weight_decay = true;
    }
    with.validate();
    const auto a = run(with, {1.0, -1.0}, 20, g), b = run(reference, {1.0, -1.0}, 20, g);
    EXPECT_GT(std::abs(a.back()[0] - b.back()[0]) + std::abs(a.back()[1] - b.back()[1]), 1e-9)
        << k.name << " did not change the result";
  }
}

// lr inside or after the momentum buffer is the same with a constant lr (b differs by the
// factor η) and differs as soon as the lr changes: the reason TF-tuned schedules misbehave
// under PyTorch's convention.
TEST(Properties, LrInMomentumMattersOnlyWhenTheLrChanges) {
  auto trajectory = [](bool lr_in_momentum, Schedule schedule) {
    Options o;
    o.momentum = 0.9, o.lr_in_momentum = lr_in_momentum;
    std::vector<double> theta = {1.0}, grad = {0.0};
    Optimizer opt({Param::of(theta, grad)}, o);
    opt.set_schedule(std::move(schedule));
    for (int t = 1; t <= 30; ++t) {
      grad[0] = std::cos(0.4 * t);
      opt.step();
    }
    return theta[0];
  };
  EXPECT_NEAR(trajectory(true, Schedule::constant()), trajectory(false, Schedule::constant()),
              1e-14);
  EXPECT_GT(std::abs(trajectory(true, Schedule::exponential(0.8)) -
                     trajectory(false, Schedule::exponential(0.8))),
            1e-3);
}

}  // namespace
}  // namespace rmsprop
