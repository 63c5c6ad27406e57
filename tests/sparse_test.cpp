// Sparse row gradients: dense mode against the dense step, lazy mode against the rule applied
// to the touched rows only, for every option; lazy vs dense; bad input.
#include "rmsprop/sparse.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "rmsprop/error.hpp"
#include "test_util.hpp"

namespace {

using rmsprop::Options;
using rmsprop::testing::error_of;
using rmsprop::testing::SplitMix64;

constexpr std::size_t kRows = 9, kWidth = 5;

// Option sets covering every axis of the rule.
std::vector<Options> option_sets() {
  std::vector<Options> out;
  auto add = [&](auto change) {
    Options o;
    o.lr = 1e-2;
    change(o);
    out.push_back(o);
  };
  add([](Options&) {});
  add([](Options& o) { o.centered = true; });
  add([](Options& o) { o.momentum = 0.9; });
  add([](Options& o) { o.momentum = 0.9, o.nesterov = true, o.lr_in_momentum = true; });
  add([](Options& o) { o.weight_decay = 0.1; });
  add([](Options& o) { o.weight_decay = 0.1, o.decoupled_weight_decay = true; });
  add([](Options& o) { o.bias_correction = true, o.centered = true; });
  add([](Options& o) { o.eps_in_sqrt = true, o.initial_accumulator_value = 0.1; });
  add([](Options& o) { o.maximize = true; });
  out.push_back(Options::adagrad(1e-2));
  out.push_back(Options::adam(1e-2));
  out.push_back(Options::sgd(1e-2, 0.9));
  return out;
}

template <class T>
struct State {
  std::vector<T> param, square_avg, grad_avg, momentum;
  explicit State(const Options& o) : param(kRows * kWidth) {
    SplitMix64 rng(11);
    for (T& v : param) v = T(rng.uniform());
    square_avg.assign(param.size(), T(o.initial_accumulator_value));
    grad_avg.assign(param.size(), T(0));
    momentum.assign(param.size(), T(0));
  }
  rmsprop::SparseParam sparse(rmsprop::DType dtype) {
    return {param.data(),      dtype,           kRows,           kWidth,
            square_avg.data(), grad_avg.data(), momentum.data(), nullptr};
  }
  rmsprop::TensorTask dense(const T* grad, const Options& o, std::int64_t step) {
    return {param.data(),
            grad,
            square_avg.data(),
            grad_avg.data(),
            momentum.data(),
            param.size(),
            rmsprop::coefficients(o, step, o.lr)};
  }
  bool operator==(const State&) const = default;
};

// Rows 7, 2, 7, 0 (repeated, unsorted) with random values.
template <class T>
std::pair<std::vector<std::int64_t>, std::vector<T>> row_gradient(std::uint64_t seed) {
  std::vector<std::int64_t> rows = {7, 2, 7, 0};
  std::vector<T> values(rows.size() * kWidth);
  SplitMix64 rng(seed);
  for (T& v : values) v = T(2 * rng.uniform());
  return {rows, values};
}

// The dense gradient of a row gradient: repeated rows summed in double in order, rounded once.
template <class T>
std::vector<T> densify(const std::vector<std::int64_t>& rows, const std::vector<T>& values) {
  std::vector<double> sum(kRows * kWidth, 0.0);
  for (std::size_t k = 0; k < rows.size(); ++k) {
    for (std::size_t j = 0; j < kWidth; ++j) {
      sum[std::size_t(rows[k]) * kWidth + j] += double(values[k * kWidth + j]);
    }
  }
  return std::vector<T>(sum.begin(), sum.end());
}

template <class T>
void dense_mode_equals_dense_step(rmsprop::DType dtype) {
  for (const Options& o : option_sets()) {
    State<T> sparse(o), dense(o);
    for (std::int64_t step = 1; step <= 6; ++step) {
      auto [rows, values] = row_gradient<T>(std::uint64_t(step));
      rmsprop::sparse_step(o, o.lr, sparse.sparse(dtype), {rows, values.data()},
                           rmsprop::SparseMode::dense, step);
      const std::vector<T> g = densify(rows, values);
      const rmsprop::TensorTask task = dense.dense(g.data(), o, step);
      rmsprop::reference_step(rmsprop::variant_of(o), dtype, std::span(&task, 1));
    }
    EXPECT_TRUE(sparse == dense) << rmsprop::variant_of(o).uses_square_avg();
  }
}

TEST(Sparse, DenseModeIsBitwiseTheDenseStepFloat) {
  dense_mode_equals_dense_step<float>(rmsprop::DType::f32);
}
TEST(Sparse, DenseModeIsBitwiseTheDenseStepDouble) {
  dense_mode_equals_dense_step<double>(rmsprop::DType::f64);
}

// Lazy: each touched row steps as a one-row tensor with its own step count; untouched rows
// are neither read nor written.
template <class T>
void lazy_mode_equals_rule_on_touched_rows(rmsprop::DType dtype) {
  for (const Options& o : option_sets()) {
    State<T> lazy(o), reference(o);
    std::vector<std::int64_t> row_steps(kRows, 0), reference_steps(kRows, 0);
    for (std::uint64_t round = 1; round <= 6; ++round) {
      auto [rows, values] = row_gradient<T>(round);
      if (round % 2 == 0) rows = {3, 3};  // another set of rows on even rounds
      values.resize(rows.size() * kWidth);
      rmsprop::sparse_step(o, o.lr, lazy.sparse(dtype), {rows, values.data()},
                           rmsprop::SparseMode::lazy, 0, row_steps);
      const std::vector<T> g = densify(rows, values);
      std::vector<bool> touched(kRows, false);
      for (auto r : rows) touched[std::size_t(r)] = true;
      for (std::size_t r = 0; r < kRows; ++r) {
        if (!touched[r]) continue;
        const std::size_t at = r * kWidth;
        const rmsprop::TensorTask task = {reference.param.data() + at,
                                          g.data() + at,
                                          reference.square_avg.data() + at,
                                          reference.grad_avg.data() + at,
                                          reference.momentum.data() + at,
                                          kWidth,
                                          rmsprop::coefficients(o, ++reference_steps[r], o.lr)};
        rmsprop::reference_step(rmsprop::variant_of(o), dtype, std::span(&task, 1));
      }
    }
    EXPECT_TRUE(lazy == reference);
    EXPECT_EQ(row_steps, reference_steps);
    EXPECT_EQ(row_steps, (std::vector<std::int64_t>{3, 0, 3, 3, 0, 0, 0, 3, 0}));
  }
}

TEST(Sparse, LazyModeIsTheRuleOnTouchedRowsFloat) {
  lazy_mode_equals_rule_on_touched_rows<float>(rmsprop::DType::f32);
}
TEST(Sparse, LazyModeIsTheRuleOnTouchedRowsDouble) {
  lazy_mode_equals_rule_on_touched_rows<double>(rmsprop::DType::f64);
}

TEST(Sparse, LazyLeavesUntouchedRowsWhileDenseDecaysThem) {
  Options o;
  o.lr = 1e-2;
  o.momentum = 0.9;
  State<double> lazy(o), dense(o);
  std::vector<std::int64_t> row_steps(kRows, 0);
  std::vector<std::int64_t> rows = {4};
  std::vector<double> values(kWidth, 1.0);
  for (std::int64_t step = 1; step <= 2; ++step) {
    rmsprop::sparse_step(o, o.lr, lazy.sparse(rmsprop::DType::f64), {rows, values.data()},
                         rmsprop::SparseMode::lazy, 0, row_steps);
    rmsprop::sparse_step(o, o.lr, dense.sparse(rmsprop::DType::f64), {rows, values.data()},
                         rmsprop::SparseMode::dense, step);
    rows = {1};  // the second step touches another row
  }
  const State<double> start(o);
  // Row 4 was touched at step 1 only: lazy leaves it after that; dense keeps moving it with
  // its momentum and decays its square average.
  for (std::size_t j = 4 * kWidth; j < 5 * kWidth; ++j) {
    EXPECT_NE(lazy.param[j], start.param[j]);
    EXPECT_NE(dense.param[j], lazy.param[j]);
    EXPECT_DOUBLE_EQ(dense.square_avg[j], 0.99 * lazy.square_avg[j]);
  }
  for (std::size_t j = 0; j < kWidth; ++j) {  // row 0: never touched, never moved
    EXPECT_EQ(lazy.param[j], start.param[j]);
    EXPECT_EQ(dense.param[j], start.param[j]);  // zero gradient, zero momentum: no step
  }
}

TEST(Sparse, BadInputIsRefusedBeforeAnythingChanges) {
  Options o;
  State<float> s(o);
  const State<float> before = s;
  std::vector<float> values(2 * kWidth, 1.0f);
  std::vector<std::int64_t> row_steps(kRows, 0);
  std::vector<std::int64_t> bad = {1, 9};
  EXPECT_NE(error_of([&] {
              rmsprop::sparse_step(o, o.lr, s.sparse(rmsprop::DType::f32), {bad, values.data()},
                                   rmsprop::SparseMode::lazy, 0, row_steps);
            }).find("index 9 at position 1 is outside the parameter's 9 rows"),
            std::string::npos);
  bad = {-1};
  EXPECT_NE(error_of([&] {
              rmsprop::sparse_step(o, o.lr, s.sparse(rmsprop::DType::f32), {bad, values.data()},
                                   rmsprop::SparseMode::dense, 1);
            }).find("index -1 at position 0"),
            std::string::npos);
  std::vector<std::int64_t> ok = {1};
  EXPECT_NE(error_of([&] {
              rmsprop::sparse_step(o, o.lr, s.sparse(rmsprop::DType::f32), {ok, nullptr},
                                   rmsprop::SparseMode::dense, 1);
            }).find("values are null"),
            std::string::npos);
  std::vector<std::int64_t> short_steps(3, 0);
  EXPECT_NE(error_of([&] {
              rmsprop::sparse_step(o, o.lr, s.sparse(rmsprop::DType::f32), {ok, values.data()},
                                   rmsprop::SparseMode::lazy, 0, short_steps);
            }).find("row_steps has 3 counts for 9 rows"),
            std::string::npos);
  auto no_state = s.sparse(rmsprop::DType::f32);
  no_state.square_avg = nullptr;
  EXPECT_NE(error_of([&] {
              rmsprop::sparse_step(o, o.lr, no_state, {ok, values.data()},
                                   rmsprop::SparseMode::lazy, 0, row_steps);
            }),
            "(no error)");
  EXPECT_TRUE(s == before);
  EXPECT_EQ(row_steps, std::vector<std::int64_t>(kRows, 0));
}

}  // namespace

namespace {

// Dense mode over many chunks and threads (untouched stretches longer than a chunk).
TEST(Sparse, DenseModeAcrossChunksAndThreads) {
  constexpr std::size_t rows = 5000, width = 7;
  Options o;
  o.momentum = 0.9;
  o.centered = true;
  std::vector<float> p(rows * width), v(p.size(), 0), m(p.size(), 0), b(p.size(), 0);
  SplitMix64 rng(3);
  for (float& x : p) x = float(rng.uniform());
  std::vector<float> p2 = p, v2 = v, m2 = m, b2 = b;
  const std::vector<std::int64_t> idx = {4999, 17, 2500, 17, 0};
  std::vector<float> values(idx.size() * width);
  for (float& x : values) x = float(rng.uniform());
  rmsprop::sparse_step(o, o.lr,
                       {p.data(), rmsprop::DType::f32, rows, width, v.data(), m.data(), b.data()},
                       {idx, values.data()}, rmsprop::SparseMode::dense, 1, {}, {2, {}});
  std::vector<double> dense(p.size(), 0.0);
  for (std::size_t k = 0; k < idx.size(); ++k) {
    for (std::size_t j = 0; j < width; ++j)
      dense[std::size_t(idx[k]) * width + j] += values[k * width + j];
  }
  const std::vector<float> g(dense.begin(), dense.end());
  const rmsprop::TensorTask t = {p2.data(),
                                 g.data(),
                                 v2.data(),
                                 m2.data(),
                                 b2.data(),
                                 p2.size(),
                                 rmsprop::coefficients(o, 1, o.lr)};
  rmsprop::reference_step(rmsprop::variant_of(o), rmsprop::DType::f32, std::span(&t, 1));
  EXPECT_EQ(p, p2);
  EXPECT_EQ(v, v2);
  EXPECT_EQ(m, m2);
  EXPECT_EQ(b, b2);
}

}  // namespace
