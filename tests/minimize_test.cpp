// rmsprop::minimize and its callbacks: known optima of classic problems, every callback's
// behaviour, stop reasons and bad input.
#include "rmsprop/minimize.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "rmsprop/callbacks.hpp"

namespace {

using rmsprop::MinimizeOptions;
using rmsprop::MinimizeState;
using rmsprop::StopReason;
namespace cb = rmsprop::callbacks;

struct Rosenbrock {
  double Evaluate(std::span<const double> x) const {
    return (1 - x[0]) * (1 - x[0]) + 100 * (x[1] - x[0] * x[0]) * (x[1] - x[0] * x[0]);
  }
  void Gradient(std::span<const double> x, std::span<double> g) const {
    g[0] = -2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] * x[0]);
    g[1] = 200 * (x[1] - x[0] * x[0]);
  }
};

// ½ Σ aᵢ xᵢ² with aᵢ from 1 to 1e4 (condition number 1e4), through EvaluateWithGradient.
template <class T>
struct IllConditionedQuadratic {
  std::vector<double> a;
  explicit IllConditionedQuadratic(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) a.push_back(std::pow(1e4, double(i) / double(n - 1)));
  }
  double EvaluateWithGradient(std::span<const T> x, std::span<T> g) const {
    double f = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      f += 0.5 * a[i] * double(x[i]) * double(x[i]);
      g[i] = T(a[i] * double(x[i]));
    }
    return f;
  }
};

// L2-regularized logistic regression, separable over its examples, with Shuffle().
struct LogisticRegression {
  std::vector<std::array<double, 3>> x;  // (feature 1, feature 2, bias 1)
  std::vector<double> y;                 // 0 or 1
  std::vector<std::size_t> order;
  double lambda = 1e-2;
  std::mt19937_64 rng{5};

  explicit LogisticRegression(std::size_t n) {
    std::normal_distribution<double> normal;
    for (std::size_t i = 0; i < n; ++i) {
      const bool positive = i % 2 == 0;
      const double shift = positive ? 1.5 : -1.5;  // two separated clouds
      x.push_back({normal(rng) + shift, normal(rng) + 0.5 * shift, 1.0});
      y.push_back(positive ? 1.0 : 0.0);
      order.push_back(i);
    }
  }
  std::size_t NumFunctions() const { return x.size(); }
  void Shuffle() { std::shuffle(order.begin(), order.end(), rng); }
  // Example i's loss: log(1 + e^z) − y·z + λ/2·|w|²/n, z = w·xᵢ; its gradient added to g.
  double loss(std::span<const double> w, std::size_t i, std::span<double> g) const {
    double z = 0;
    for (int k = 0; k < 3; ++k) z += w[k] * x[i][std::size_t(k)];
    const double p = 1 / (1 + std::exp(-z));
    double reg = 0;
    for (int k = 0; k < 3; ++k) {
      g[std::size_t(k)] += (p - y[i]) * x[i][std::size_t(k)] + lambda * w[k] / double(x.size());
      reg += w[k] * w[k];
    }
    return std::log1p(std::exp(z)) - y[i] * z + 0.5 * lambda * reg / double(x.size());
  }
  double EvaluateWithGradient(std::span<const double> w, std::size_t begin, std::span<double> g,
                              std::size_t batch) {
    double f = 0;
    for (std::size_t k = begin; k < begin + batch; ++k) f += loss(w, order[k], g);
    return f;
  }
  // The optimum by Newton's method on the full objective (the test's reference).
  std::array<double, 3> newton() const {
    std::array<double, 3> w{0, 0, 0};
    for (int it = 0; it < 50; ++it) {
      double grad[3] = {0, 0, 0}, h[3][3] = {};
      for (std::size_t i = 0; i < x.size(); ++i) {
        double z = 0;
        for (int k = 0; k < 3; ++k) z += w[std::size_t(k)] * x[i][std::size_t(k)];
        const double p = 1 / (1 + std::exp(-z));
        for (int a = 0; a < 3; ++a) {
          grad[a] += (p - y[i]) * x[i][std::size_t(a)];
          for (int b = 0; b < 3; ++b)
            h[a][b] += p * (1 - p) * x[i][std::size_t(a)] * x[i][std::size_t(b)];
        }
      }
      for (int a = 0; a < 3; ++a) grad[a] += lambda * w[std::size_t(a)], h[a][a] += lambda;
      // Solve h·d = grad (3×3, Cramer's rule).
      auto det = [](double m[3][3]) {
        return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
               m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
               m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
      };
      const double d = det(h);
      for (int c = 0; c < 3; ++c) {
        double m[3][3];
        for (int a = 0; a < 3; ++a)
          for (int b = 0; b < 3; ++b) m[a][b] = b == c ? grad[a] : h[a][b];
        w[std::size_t(c)] -= det(m) / d;
      }
    }
    return w;
  }
};

TEST(Minimize, RosenbrockFromTheSeedsStart) {
  std::vector<double> x = {-1.5, 2.0};
  MinimizeOptions o;
  o.optimizer.lr = 1e-2;
  o.max_iterations = 100'000;
  o.tolerance = -1;
  o.schedule = rmsprop::Schedule::exponential(0.9999);  // lr to ~5e-7: settle, don't oscillate
  const auto r = rmsprop::minimize(Rosenbrock{}, x, o);
  EXPECT_EQ(r.reason, StopReason::max_iterations);
  EXPECT_EQ(r.iterations, 100'000u);
  EXPECT_NEAR(x[0], 1.0, 1e-5);
  EXPECT_NEAR(x[1], 1.0, 1e-5);
  EXPECT_LT(r.objective, 1e-9);
}

TEST(Minimize, ConditionNumber1e4QuadraticFloatAndDouble) {
  for (int precision = 0; precision < 2; ++precision) {
    MinimizeOptions o;
    o.optimizer.lr = 1e-2;
    o.max_iterations = 20'000;
    o.tolerance = -1;
    o.schedule = rmsprop::Schedule::exponential(0.9995);
    if (precision == 0) {
      std::vector<double> x(50, 1.0);
      const auto r = rmsprop::minimize(IllConditionedQuadratic<double>(50), x, o);
      for (double v : x) EXPECT_NEAR(v, 0.0, 1e-6);
      EXPECT_LT(r.objective, 1e-8);
    } else {
      std::vector<float> x(50, 1.0f);
      const auto r = rmsprop::minimize(IllConditionedQuadratic<float>(50), x, o);
      for (float v : x) EXPECT_NEAR(v, 0.0f, 1e-5f);
      EXPECT_LT(r.objective, 1e-6);
    }
  }
}

TEST(Minimize, SeparableLogisticRegressionReachesNewtonsOptimum) {
  LogisticRegression f(400);
  const auto best = f.newton();
  std::vector<double> w = {0, 0, 0};
  MinimizeOptions o;
  o.optimizer.lr = 1e-2;
  o.batch_size = 100;    // 4 mini-batches an epoch
  o.max_iterations = 0;  // epochs until the tolerance
  o.tolerance = 1e-7;
  o.schedule = rmsprop::Schedule::exponential(0.9995);
  std::size_t epochs = 0;
  struct CountEpochs {
    std::size_t* epochs;
    bool EndEpoch(const MinimizeState<double>&, double) { return ++*epochs > 5000; }
  };
  const auto r = rmsprop::minimize(f, w, o, CountEpochs{&epochs});
  EXPECT_EQ(r.reason, StopReason::tolerance) << epochs << " epochs";
  EXPECT_EQ(r.iterations, epochs * 4);
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(w[std::size_t(k)], best[std::size_t(k)], 1e-3) << k;
}

TEST(Minimize, EveryFlavorAndBaselineMinimizesAQuadratic) {
  for (rmsprop::Flavor flavor : rmsprop::all_flavors()) {
    MinimizeOptions o;
    o.optimizer = rmsprop::Options::from_flavor(flavor);
    o.optimizer.lr = 1e-2;
    o.max_iterations = 5000;
    o.schedule = rmsprop::Schedule::exponential(0.999);
    std::vector<double> x(8, 1.0);
    const auto r = rmsprop::minimize(IllConditionedQuadratic<double>(8), x, o);
    EXPECT_LT(r.objective, 1e-3) << rmsprop::to_string(flavor);
  }
  MinimizeOptions adam;
  adam.optimizer = rmsprop::Options::adam(1e-2);
  adam.max_iterations = 5000;
  std::vector<double> x(8, 1.0);
  EXPECT_LT(rmsprop::minimize(IllConditionedQuadratic<double>(8), x, adam).objective, 1e-3);
}

TEST(Callbacks, PrintLossEveryN) {
  std::FILE* out = std::tmpfile();
  std::vector<double> x = {-1.5, 2.0};
  MinimizeOptions o;
  o.max_iterations = 25;
  o.tolerance = -1;
  rmsprop::minimize(Rosenbrock{}, x, o, cb::PrintLoss(10, out));
  std::rewind(out);
  char line[128];
  std::vector<std::string> lines;
  while (std::fgets(line, sizeof line, out)) lines.emplace_back(line);
  std::fclose(out);
  ASSERT_EQ(lines.size(), 3u);  // iterations 0, 10, 20
  EXPECT_EQ(lines[0], "iteration 0: objective 12.5\n");
  EXPECT_EQ(lines[2].rfind("iteration 20: objective ", 0), 0u);
}

// A function whose objective follows a script (its gradient is 1 everywhere).
struct Scripted {
  std::vector<double> values;
  std::size_t* calls;
  double Evaluate(std::span<const double>) const {
    const std::size_t i = (*calls)++;
    return values[std::min(i, values.size() - 1)];
  }
  void Gradient(std::span<const double>, std::span<double> g) const { g[0] = 1; }
};

TEST(Callbacks, EarlyStopAtMinLossWithPatience) {
  std::size_t calls = 0;
  std::vector<double> x = {0};
  MinimizeOptions o;
  o.tolerance = -1;
  cb::EarlyStopAtMinLoss stop(3);
  const auto r = rmsprop::minimize(Scripted{{5, 4, 3, 3.5, 3.2, 3.1, 2.0}, &calls}, x, o, stop);
  // 3 is the minimum at the third objective; three objectives without improvement stop it
  // before the fourth step.
  EXPECT_EQ(r.reason, StopReason::callback);
  EXPECT_EQ(r.iterations, 5u);
  EXPECT_EQ(stop.best(), 3.0);
}

TEST(Callbacks, StoreBestCoordinatesKeepsTheLowestObjectivesPoint) {
  std::size_t calls = 0;
  std::vector<double> x = {0};
  MinimizeOptions o;
  o.tolerance = -1;
  o.max_iterations = 6;
  o.optimizer.lr = 0.5;
  std::vector<double> seen;
  auto record = [&](const MinimizeState<double>& s) {
    seen.push_back(s.coordinates[0]);
    return false;
  };
  cb::StoreBestCoordinates<double> best;
  rmsprop::minimize(Scripted{{5, 4, 1, 3, 2, 6, 7, 8}, &calls}, x, o, best, record);
  EXPECT_EQ(best.best_objective(), 1.0);
  // The third objective was evaluated at the coordinates after two steps.
  ASSERT_EQ(best.best_coordinates().size(), 1u);
  EXPECT_EQ(best.best_coordinates()[0], seen[1]);
}

// Records the gradient each step sees after the callbacks before it.
struct GradientRecorder {
  std::vector<std::vector<double>>* out;
  void Gradient(const MinimizeState<double>&, std::span<double> g) {
    out->emplace_back(g.begin(), g.end());
  }
};

struct Steep {
  void Gradient(std::span<const double> x, std::span<double> g) const {
    g[0] = 300 * x[0], g[1] = -400 * x[1], g[2] = 0.5;
  }
  double Evaluate(std::span<const double> x) const { return 150 * x[0] * x[0] - 200 * x[1] * x[1]; }
};

TEST(Callbacks, GradientClippingByNormAndByValue) {
  MinimizeOptions o;
  o.max_iterations = 1;
  std::vector<std::vector<double>> seen;
  std::vector<double> x = {1, 1, 1};
  rmsprop::minimize(Steep{}, x, o, cb::GradientClipByNorm(5.0), GradientRecorder{&seen});
  ASSERT_EQ(seen.size(), 1u);
  const double norm =
      std::sqrt(seen[0][0] * seen[0][0] + seen[0][1] * seen[0][1] + 0.0 + seen[0][2] * seen[0][2]);
  EXPECT_NEAR(norm, 5.0, 1e-12);
  EXPECT_NEAR(seen[0][0] / seen[0][1], 300.0 / -400.0, 1e-12);  // direction kept
  seen.clear();
  x = {1, 1, 1};
  rmsprop::minimize(Steep{}, x, o, cb::GradientClipByValue(-2, 2), GradientRecorder{&seen});
  EXPECT_EQ(seen[0], (std::vector<double>{2, -2, 0.5}));
  EXPECT_THROW(cb::GradientClipByNorm(0), rmsprop::InvalidArgument);
  EXPECT_THROW(cb::GradientClipByValue(1, -1), rmsprop::InvalidArgument);
}

TEST(Callbacks, TimeLimitAndLambdaStopAndProgressBar) {
  std::vector<double> x = {-1.5, 2.0};
  MinimizeOptions o;
  o.tolerance = -1;
  auto r = rmsprop::minimize(Rosenbrock{}, x, o, cb::TimeLimit(0));
  EXPECT_EQ(r.reason, StopReason::callback);
  EXPECT_EQ(r.iterations, 1u);
  std::FILE* out = std::tmpfile();
  r = rmsprop::minimize(Rosenbrock{}, x, o, cb::ProgressBar(10, out),
                        [](const MinimizeState<double>& s) { return s.iteration == 7; });
  EXPECT_EQ(r.iterations, 7u);
  EXPECT_EQ(r.reason, StopReason::callback);
  std::fseek(out, 0, SEEK_END);
  EXPECT_GT(std::ftell(out), 0);  // drew the bar and erased it
  std::fclose(out);
}

TEST(Minimize, StopReasonsAndBadInput) {
  std::vector<double> x = {0};
  std::size_t calls = 0;
  MinimizeOptions o;
  o.tolerance = 0.5;
  auto r = rmsprop::minimize(Scripted{{5, 4, 3.8}, &calls}, x, o);
  EXPECT_EQ(r.reason, StopReason::tolerance);
  EXPECT_EQ(r.iterations, 3u);
  calls = 0;
  r = rmsprop::minimize(Scripted{{5, NAN}, &calls}, x, o);
  EXPECT_EQ(r.reason, StopReason::non_finite);
  EXPECT_EQ(r.iterations, 1u);

  std::vector<double> empty;
  EXPECT_THROW(rmsprop::minimize(Rosenbrock{}, empty, o), rmsprop::InvalidArgument);
  o.optimizer.lr = -1;
  EXPECT_THROW(rmsprop::minimize(Rosenbrock{}, x, o), rmsprop::InvalidOption);
  o = MinimizeOptions{};
  o.batch_size = 0;
  LogisticRegression f(10);
  std::vector<double> w(3);
  EXPECT_THROW(rmsprop::minimize(f, w, o), rmsprop::InvalidArgument);
}

// The ill-conditioned quadratic with its coordinates in two buffers (8 and 42 values).
struct SplitQuadratic {
  IllConditionedQuadratic<double> whole{50};
  double EvaluateWithGradient(std::span<const std::span<double>> x,
                              std::span<const std::span<double>> g) const {
    double f = 0;
    for (std::size_t k = 0, at = 0; k < x.size(); at += x[k].size(), ++k) {
      for (std::size_t i = 0; i < x[k].size(); ++i) {
        f += 0.5 * whole.a[at + i] * x[k][i] * x[k][i];
        g[k][i] = whole.a[at + i] * x[k][i];
      }
    }
    return f;
  }
};

TEST(Minimize, SeveralCoordinateBuffersStepLikeOneFlatBuffer) {
  MinimizeOptions o;
  o.optimizer.momentum = 0.5;
  o.max_iterations = 300;
  o.tolerance = -1;
  std::vector<double> flat(50, 1.0), first(8, 1.0), second(42, 1.0);
  std::vector<std::vector<double>> seen_flat, seen_blocks;
  cb::StoreBestCoordinates<double> best_flat, best_blocks;
  const auto a =
      rmsprop::minimize(IllConditionedQuadratic<double>(50), flat, o, cb::GradientClipByNorm(10),
                        GradientRecorder{&seen_flat}, best_flat);
  const auto b =
      rmsprop::minimize(SplitQuadratic{}, std::vector<std::span<double>>{first, second}, o,
                        cb::GradientClipByNorm(10), GradientRecorder{&seen_blocks}, best_blocks);
  EXPECT_EQ(a.objective, b.objective);
  std::vector<double> joined = first;
  joined.insert(joined.end(), second.begin(), second.end());
  EXPECT_EQ(joined, flat);            // the same kernel on the same values: bitwise
  EXPECT_EQ(seen_blocks, seen_flat);  // callbacks see every buffer's gradient as one
  EXPECT_EQ(best_blocks.best_coordinates(), best_flat.best_coordinates());
  EXPECT_THROW(rmsprop::minimize(SplitQuadratic{}, std::vector<std::span<double>>{}, o),
               rmsprop::InvalidArgument);
}

}  // namespace
