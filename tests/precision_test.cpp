// 16-bit parameters and state: what each precision computes, through the optimizer.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <vector>

#include "rmsprop/error.hpp"
#include "rmsprop/half.hpp"
#include "rmsprop/optimizer.hpp"
#include "test_util.hpp"

namespace rmsprop {
namespace {

std::vector<float> random_floats(std::size_t n, std::uint64_t seed, double scale) {
  testing::SplitMix64 rng(seed);
  std::vector<float> out(n);
  for (float& x : out) x = float(scale * rng.uniform());
  return out;
}

std::vector<bfloat16> to_bf16(const std::vector<float>& x) {
  std::vector<bfloat16> out;
  for (float v : x) out.push_back(to_bfloat16(v));
  return out;
}

std::vector<float> widen(const std::vector<bfloat16>& x) {
  std::vector<float> out;
  for (bfloat16 v : x) out.push_back(to_float(v));
  return out;
}

// Overwrites a buffer the optimizer points at, in place (assigning a new vector would move
// its storage and leave the optimizer a dangling pointer).
template <class T>
void refill(std::vector<T>& buffer, const std::vector<T>& values) {
  std::copy(values.begin(), values.end(), buffer.begin());
}

Options centered_momentum() {
  Options o;
  o.centered = true, o.momentum = 0.9, o.lr = 0.01;
  return o;
}

// A bfloat16 step computes in float32 on the widened values and rounds once to nearest:
// the parameter equals the float32 step's result rounded, bit for bit.
TEST(Precision, ABFloat16StepIsTheFloat32StepRounded) {
  const std::size_t n = 1000;
  std::vector<bfloat16> p = to_bf16(random_floats(n, 1, 1)), g = to_bf16(random_floats(n, 2, 1));
  std::vector<float> p32 = widen(p), g32 = widen(g);
  Optimizer half({Param::of(p, g)}, centered_momentum());
  Optimizer single({Param::of(p32, g32)}, centered_momentum());
  half.step();
  single.step();
  for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(p[i].bits, to_bfloat16(p32[i]).bits) << i;
  // float32 state: identical to the float32 run's after one step
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(half.square_avg<float>(0, 0)[i], single.square_avg<float>(0, 0)[i]);
  }
}

// With master weights the rule runs on a float32 copy: over many steps the copy follows the
// float32 trajectory exactly (same gradients), and the bfloat16 parameter is its rounding.
TEST(Precision, MasterWeightsFollowTheFloat32TrajectoryExactly) {
  const std::size_t n = 257;
  const auto init = random_floats(n, 3, 1);
  std::vector<bfloat16> p = to_bf16(init), g(n);
  std::vector<float> p32 = widen(p), g32(n);
  Options o = centered_momentum();
  o.master_weights = true;
  Optimizer half({Param::of(p, g)}, o);
  Optimizer single({Param::of(p32, g32)}, centered_momentum());
  for (int t = 0; t < 50; ++t) {
    refill(g, to_bf16(random_floats(n, 100 + t, 1)));
    refill(g32, widen(g));
    half.step();
    single.step();
  }
  const auto master = half.master_weights(0, 0);
  ASSERT_EQ(master.size(), n);
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(master[i], p32[i]) << i;
    EXPECT_EQ(p[i].bits, to_bfloat16(p32[i]).bits) << i;
  }
}

// Updates smaller than half a bfloat16 ulp vanish under round-to-nearest; stochastic rounding
// keeps them in expectation. lr·g = 1e-4 per step for 500 steps from 1.0 (ulp 2^-7 ≈ 0.0078).
TEST(Precision, StochasticRoundingKeepsUpdatesThatRoundToNearestLoses) {
  const std::size_t n = 4096;
  auto run = [&](bool stochastic) {
    std::vector<bfloat16> p(n, to_bfloat16(1.0f)), g(n, to_bfloat16(1.0f));
    Options o = Options::sgd(1e-4);
    o.stochastic_rounding = stochastic;
    Optimizer opt({Param::of(p, g)}, o);
    for (int t = 0; t < 500; ++t) opt.step();
    double mean = 0;
    for (bfloat16 x : p) mean += to_float(x);
    return mean / double(n);
  };
  EXPECT_EQ(run(false), 1.0);          // every update rounded away
  EXPECT_NEAR(run(true), 0.95, 2e-3);  // 1 − 500·1e-4, to within the sampling noise
}

TEST(Precision, StochasticRoundingIsTheSameForAnyThreadCount) {
  const std::size_t n = 200003;
  auto run = [&](int threads) {
    std::vector<bfloat16> p = to_bf16(random_floats(n, 5, 1)), g = to_bf16(random_floats(n, 6, 1));
    Options o;
    o.stochastic_rounding = true;
    Optimizer opt({Param::of(p, g)}, o);
    opt.set_kernel_config({threads, {}});
    for (int t = 0; t < 3; ++t) opt.step();
    return widen(p);
  };
  EXPECT_EQ(run(1), run(2));
}

TEST(Precision, BFloat16StateHalvesTheStateAndStaysClose) {
  const std::size_t n = 1000;
  std::vector<float> a = random_floats(n, 7, 1), b = a, g(n);
  Options half_state = centered_momentum();
  half_state.state_dtype = StateDType::bfloat16;
  Optimizer x({Param::of(a, g)}, half_state), y({Param::of(b, g)}, centered_momentum());
  for (int t = 0; t < 20; ++t) {
    refill(g, random_floats(n, 200 + t, 1));
    x.step();
    y.step();
  }
  EXPECT_EQ(x.square_avg<bfloat16>(0, 0).size(), n);
  EXPECT_THROW(x.square_avg<float>(0, 0), InvalidArgument);
  for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(a[i], b[i], 0.02) << i;
}

TEST(Precision, Float16ParametersWork) {
  std::vector<float16> p(3, to_float16(1.0f)),
      g = {to_float16(0.5f), to_float16(-1.0f), to_float16(0.0f)};
  Optimizer opt({Param::of(p, g)}, Options::sgd(0.25));
  opt.step();
  EXPECT_EQ(to_float(p[0]), 0.875f);
  EXPECT_EQ(to_float(p[1]), 1.25f);
  EXPECT_EQ(to_float(p[2]), 1.0f);
}

TEST(Precision, UnsupportedCombinationsAreRefused) {
  std::vector<double> d(2), dg(2);
  Options bf16_state;
  bf16_state.state_dtype = StateDType::bfloat16;
  try {
    Optimizer opt({Param::of(d, dg)}, bf16_state);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_STREQ(e.what(),
                 "group 0, parameter 0: float64 parameters keep float64 state; "
                 "state_dtype=bfloat16 is for float32 and 16-bit parameters");
  }
  std::vector<float16> h(2), hg(2);
  Options sr;
  sr.stochastic_rounding = true;
  EXPECT_THROW(Optimizer({Param::of(h, hg)}, sr), InvalidArgument);
  Optimizer ok({Param::of(h, hg)}, Options{});
  EXPECT_THROW(ok.set_options(0, sr), InvalidArgument);
  EXPECT_THROW(check_precision({DType::f32, DType::f32, true, false}), InvalidArgument);
}

TEST(Precision, NonFiniteBFloat16GradientsAreCaught) {
  std::vector<bfloat16> p(3, to_bfloat16(1.0f)), g(3, to_bfloat16(1.0f));
  g[1] = to_bfloat16(-INFINITY);
  Optimizer opt({Param::of(p, g)}, Options{});
  EXPECT_THROW(opt.step(), NonFiniteError);
}

TEST(Precision, CheckpointsKeepSixteenBitStateAndMasterWeightsBitwise) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("rmsprop_precision_" + std::to_string(::getpid()) + ".ckpt");
  const std::size_t n = 100;
  Options o = centered_momentum();
  o.master_weights = true, o.state_dtype = StateDType::bfloat16, o.stochastic_rounding = true;
  auto make = [&](std::vector<bfloat16>& p, std::vector<bfloat16>& g) {
    return Optimizer({Param::of(p, g)}, o);
  };
  std::vector<bfloat16> p1 = to_bf16(random_floats(n, 9, 1)), g1(n), p2 = p1, g2(n);
  Optimizer straight = make(p1, g1), stopped = make(p2, g2);
  for (int t = 0; t < 10; ++t) {
    refill(g1, to_bf16(random_floats(n, 300 + t, 1)));
    refill(g2, g1);
    straight.step();
    if (t < 5) stopped.step();
    if (t == 4) {
      stopped.save(path);
      Optimizer resumed = make(p2, g2);
      resumed.load(path);
      stopped = std::move(resumed);
    }
    if (t >= 5) stopped.step();
  }
  std::filesystem::remove(path);
  EXPECT_EQ(widen(p1), widen(p2));
}

}  // namespace
}  // namespace rmsprop
