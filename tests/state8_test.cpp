// 8-bit optimizer state (NOTE: [8-bit state]): the codec's bounds, derived from its code maps;
// blocks, odd sizes and non-finite values; the optimizer with state_dtype=int8 (sizes,
// refusals, conversion both ways, checkpoints of this version and of version 1); each kernel's
// 8-bit step against the float32 step between decoding and encoding. That every kernel gives
// the reference's bits is fused_kernel_test's (it walks every supported precision, 8-bit state
// included).
#include "kernels/state8.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "kernel_buffers.hpp"
#include "kernels/storage.hpp"
#include "rmsprop/cuda.hpp"
#include "rmsprop/error.hpp"
#include "rmsprop/kernel.hpp"
#include "rmsprop/optimizer.hpp"
#include "rmsprop/state8.hpp"
#include "rmsprop/step_plan.hpp"
#include "test_util.hpp"

namespace rmsprop {
#ifdef RMSPROP_TEST_STATE8_X86
namespace testing {  // state8_check_<target>.cpp
std::size_t state8_avx2_mismatching_blocks(std::uint64_t seed, std::size_t blocks);
std::size_t state8_avx512_mismatching_blocks(std::uint64_t seed, std::size_t blocks);
}  // namespace testing
#endif
namespace {

using kernels::SignedCode;
using kernels::SquareAvgCode;

// A value's relative rounding error in a code with F fraction bits is at most half a step of
// its binade, 2^-(F+1); 1/scale, the multiply by it and the multiply back each add at most
// 2^-24.
constexpr double kFractionBound = 1.0 / 32 + 3.0 / (1 << 24);  // F = 4 for both maps

// Values spread over every binade of a code's range, both signs.
std::vector<float> spread(double smallest, std::uint64_t seed, std::size_t n) {
  testing::SplitMix64 rng(seed);
  std::vector<float> out(n);
  for (float& x : out) {
    const double u = (rng.uniform() + 1) / 2;  // [0, 1): uniform() is [-1, 1)
    const double magnitude = smallest * std::pow(1.0 / smallest, u);
    x = float(rng.uniform() < 0 ? -magnitude : magnitude);
  }
  return out;
}

TEST(State8Codec, EveryValueInRangeRoundTripsWithinHalfAStepOfItsBinade) {
  for (const float scale : {1.0f, 3.7e-3f, 2.5e4f, 1e-30f}) {
    // square_avg's map (unsigned: magnitudes) down to its smallest code, 2^-15 of the largest
    for (float x : spread(std::ldexp(1.0, -15), 1, 20000)) {
      const float y = std::abs(x) * SquareAvgCode::kLargest * scale;
      const float back =
          SquareAvgCode::decode(SquareAvgCode::encode(y, scale, 1.0f / scale), scale);
      ASSERT_LE(std::abs(double(back) - y), kFractionBound * y) << y << " scale " << scale;
    }
    // the signed map down to 2^-7 of its largest
    for (float x : spread(std::ldexp(1.0, -7), 2, 20000)) {
      const float y = x * SignedCode::kLargest * scale;
      const float back = SignedCode::decode(SignedCode::encode(y, scale, 1.0f / scale), scale);
      ASSERT_LE(std::abs(double(back) - y), kFractionBound * std::abs(y)) << y;
      ASSERT_EQ(std::signbit(back), std::signbit(y));
    }
  }
}

TEST(State8Codec, BelowTheRangeUnsignedStaysNonzeroAndSignedGoesToZero) {
  const float scale = 1.0f;
  const float tiny = std::ldexp(1.0f, -20);  // below both ranges
  EXPECT_GT(SquareAvgCode::decode(SquareAvgCode::encode(tiny, scale, 1.0f / scale), scale), 0.0f);
  EXPECT_EQ(SquareAvgCode::encode(std::numeric_limits<float>::denorm_min(), scale, 1.0f), 1u);
  EXPECT_EQ(SignedCode::decode(SignedCode::encode(-tiny, scale, 1.0f / scale), scale), 0.0f);
  EXPECT_EQ(SignedCode::encode(-tiny, scale, 1.0f / scale), 0u)
      << "a flushed negative is 0, not the NaN code";
  EXPECT_EQ(SignedCode::encode(-0.0f, scale, 1.0f / scale), 0u);
  EXPECT_EQ(SquareAvgCode::encode(0.0f, scale, 1.0f / scale), 0u);
  EXPECT_EQ(SquareAvgCode::decode(0, scale), 0.0f);
  // a zero scale (an all-zero block) encodes everything as 0
  EXPECT_EQ(SignedCode::encode(0.0f, 0.0f, 1.0f / 0.0f), 0u);
}

TEST(State8Codec, TheLargestValueOfABlockTakesTheTopCode) {
  std::vector<float> block = {0.25f, -3.0f, 1e-3f};
  const float scale = SignedCode::scale_for(kernels::finite_absmax(block.data(), block.size()));
  EXPECT_EQ(SignedCode::encode(-3.0f, scale, 1.0f / scale), 0xFFu);
  EXPECT_LE(std::abs(SignedCode::decode(0xFF, scale) + 3.0f), 3.0 * kFractionBound);
}

// A block whose largest |value| is a denormal has a denormal scale, whose reciprocal is
// infinite: the encoder must still give 0 for 0 and each value its own code (it read every
// value back as ±the largest, 0 included, before encoding_inverse).
TEST(State8Codec, ABlockOfDenormalsReadsBackZerosAsZerosAndEachValueNearItself) {
  const float denorm_min = std::numeric_limits<float>::denorm_min();
  for (const float largest : {denorm_min, 7 * denorm_min, 1e-40f, 1e-39f, 1.1e-38f}) {
    const std::vector<double> values = {0.0, largest, -largest / 2, largest / 4, -0.0, largest / 3};
    std::vector<std::byte> buffer(state8_bytes(values.size()));
    kernels::store_state(DType::i8_block, false, buffer.data(), values);
    const auto back = kernels::load_state(DType::i8_block, false, buffer.data(), values.size());
    EXPECT_EQ(back[0], 0.0) << largest;
    EXPECT_EQ(back[4], 0.0) << largest;
    for (std::size_t i = 0; i < values.size(); ++i) {
      // the code's relative bound, plus the denormal grid: the scale rounded to it (an error of
      // 2^-150 times |x|/scale ≤ 2) and the decoded product rounded to it (2^-150)
      const double bound =
          kFractionBound * std::abs(values[i]) + std::ldexp(1.0, -149) + std::ldexp(1.0, -150);
      EXPECT_LE(std::abs(back[i] - values[i]), bound) << largest << " " << i;
    }
  }
}

TEST(State8Codec, NonFiniteValuesReadBackAsNaNAndSpoilNoOtherValue) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<double> values(300, 0.5);
  values[7] = nan, values[8] = inf, values[9] = -inf, values[10] = 2.0;
  for (const bool square : {true, false}) {
    std::vector<std::byte> buffer(state8_bytes(values.size()));
    kernels::store_state(DType::i8_block, square, buffer.data(), values);
    const auto back = kernels::load_state(DType::i8_block, square, buffer.data(), values.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i >= 7 && i <= 9) {
        EXPECT_TRUE(std::isnan(back[i])) << i;
      } else {  // all 0.5 but one 2.0: within the map's range
        const double e = kFractionBound;
        EXPECT_LE(std::abs(back[i] - values[i]), ((1 + e) * (1 + e) - 1) * values[i]) << i;
      }
    }
  }
}

TEST(State8Codec, BlocksOfEverySizeRoundTripAndEqualStatesAreEqualBytes) {
  for (const std::size_t n : {1u, 3u, 255u, 256u, 257u, 513u, 1000u}) {
    std::vector<double> signed_values(n);
    testing::SplitMix64 rng(n);
    for (double& x : signed_values) x = rng.uniform() * 2;  // [-2, 2)
    EXPECT_EQ(state8_bytes(n), (n + 3) / 4 * 4 + 4 * ((n + 255) / 256));
    for (const bool square : {true, false}) {
      std::vector<double> values = signed_values;  // square_avg: v >= 0
      if (square) {
        for (double& x : values) x = std::abs(x);
      }
      std::vector<std::byte> a(state8_bytes(n), std::byte{0x5A}), b(state8_bytes(n));
      kernels::store_state(DType::i8_block, square, a.data(), values);
      const auto back = kernels::load_state(DType::i8_block, square, a.data(), n);
      for (std::size_t i = 0; i < n; ++i) {
        // square_avg stores sqrt(v): v's relative error is (1 + e)² − 1 for sqrt's e. The
        // signed map reads values below its smallest code (2^-7·1.0625 of the block's scale,
        // max/kLargest with max < 2) as 0.
        const double e = kFractionBound;
        const double flushed = square ? 0.0 : 1.0625 * std::ldexp(2.0, -7) / SignedCode::kLargest;
        const double bound = square ? (1 + e) * (1 + e) - 1 : e;
        ASSERT_LE(std::abs(back[i] - values[i]), bound * std::abs(values[i]) + flushed)
            << n << " " << i;
      }
      kernels::store_state(DType::i8_block, square, b.data(), back);  // re-encoding is exact
      kernels::store_state(DType::i8_block, square, a.data(), back);
      EXPECT_EQ(a, b) << n;
    }
  }
}

#ifdef RMSPROP_TEST_STATE8_X86
// NOTE: [8-bit codec in intrinsics]: the kernels built for AVX2 and AVX-512 encode and decode
// with intrinsics, the reference kernel with the scalar codec; the codes and the decoded values
// must be the same bits (fused_kernel_test compares the kernels on optimizer data, these on any
// bit pattern).
TEST(State8Codec, TheAvx2CodecGivesTheScalarCodecsBitsForAnyValues) {
  if (!__builtin_cpu_supports("avx2")) GTEST_SKIP() << "this CPU has no AVX2";
  EXPECT_EQ(testing::state8_avx2_mismatching_blocks(15, 40000), 0u);
}

TEST(State8Codec, TheAvx512CodecGivesTheScalarCodecsBitsForAnyValues) {
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
      !__builtin_cpu_supports("avx512dq")) {
    GTEST_SKIP() << "this CPU has no AVX-512 F, BW and DQ";
  }
  EXPECT_EQ(testing::state8_avx512_mismatching_blocks(16, 40000), 0u);
}
#endif

// The optimizer with 8-bit state.
Options eight_bit(Options o = {}) {
  o.state_dtype = StateDType::int8;
  return o;
}

std::vector<float> ramp(std::size_t n, float shift) {
  std::vector<float> v(n);
  for (std::size_t j = 0; j < n; ++j) v[j] = float(int(j % 17) - 8) * 0.125f + shift;
  return v;
}

// The same tensor with float32 state: the 8-bit state decoded (load_state).
testing::Buffers decoded(const testing::Buffers& b8) {
  Precision p = b8.precision;
  p.state = DType::f32;
  testing::Buffers out = b8;
  out.precision = p;
  auto decode = [&](const std::vector<std::byte>& from, std::vector<std::byte>& to, bool square) {
    const auto values = kernels::load_state(DType::i8_block, square, from.data(), b8.size);
    to.assign((b8.size + b8.offset) * sizeof(float), std::byte{0});
    for (std::size_t i = 0; i < b8.size; ++i) {
      kernels::store_from_double(DType::f32, to.data(), b8.offset + i, values[i]);
    }
  };
  decode(b8.square_avg, out.square_avg, true);
  decode(b8.grad_avg, out.grad_avg, false);
  decode(b8.momentum, out.momentum, false);
  return out;
}

// The float32-state tensor's state encoded (store_state), as 8-bit buffers.
std::vector<std::byte> encoded(const std::vector<std::byte>& f32, const testing::Buffers& b,
                               bool square) {
  std::vector<double> values(b.size);
  for (std::size_t i = 0; i < b.size; ++i) {
    values[i] = kernels::load_as_double(DType::f32, f32.data(), b.offset + i);
  }
  std::vector<std::byte> out(state8_bytes(b.size), std::byte{0});
  kernels::store_state(DType::i8_block, square, out.data(), values);
  return out;
}

// An 8-bit step is decode, the float32-state step, encode — bit for bit, in every kernel,
// variant and SIMD target, with and without bias correction (without it the fused kernels hand
// the encoder the rule's own sqrt(v): NOTE: [8-bit encoder takes the rule's root]).
TEST(State8Kernel, EachStepIsTheFloat32StepBetweenDecodingAndEncoding) {
  const std::size_t n = 3 * kState8Block + 77;  // several blocks and a partial one
  for (const Precision& p8 : {Precision{DType::f32, DType::i8_block, false, false},
                              Precision{DType::bf16, DType::i8_block, true, false}}) {
    const testing::Buffers pristine(p8, n, 3, 7);
    const testing::Buffers pristine32 = decoded(pristine);
    for (const Variant& v : testing::all_variants()) {
      for (const bool bias_correction : {false, true}) {
        Options o = testing::options_for(v);
        o.bias_correction = bias_correction;
        testing::Buffers expected = pristine32;
        const TensorTask expected_task = expected.task(o);
        reference_step(v, expected.precision, {&expected_task, 1});
        for (SimdTarget target : available_simd_targets()) {
          SCOPED_TRACE(testing::describe(p8) + " variant " + std::to_string(kernels::index_of(v)) +
                       " target " + std::string(to_string(target)) + " bias correction " +
                       std::to_string(bias_correction));
          testing::Buffers actual = pristine;
          const TensorTask task = actual.task(o);
          fused_step(v, p8, {&task, 1}, {2, target});
          ASSERT_EQ(actual.param, expected.param);
          ASSERT_EQ(actual.master, expected.master);
          ASSERT_EQ(actual.square_avg, encoded(expected.square_avg, expected, true));
          ASSERT_EQ(actual.grad_avg, encoded(expected.grad_avg, expected, false));
          ASSERT_EQ(actual.momentum, encoded(expected.momentum, expected, false));
        }
      }
    }
  }
}

TEST(State8Optimizer, LargeTensorsTakeEightBitStateAndSmallOnesKeepFloat32) {
  std::vector<float> big(5000), small(100), g_big = ramp(5000, 0.1f), g_small = ramp(100, 0.1f);
  Optimizer opt({Param::of(big, g_big), Param::of(small, g_small)}, eight_bit());
  opt.step();
  EXPECT_EQ(opt.state_dtype(0, 0), DType::i8_block);
  EXPECT_EQ(opt.state_dtype(0, 1), DType::f32);
  EXPECT_EQ(opt.state_values(0, 0, "square_avg").size(), 5000u);
  Options all = eight_bit();
  all.state8_min_size = 0;
  opt.set_options(0, all);
  opt.step();  // converts the small tensor's state
  EXPECT_EQ(opt.state_dtype(0, 1), DType::i8_block);
  // and the knob changes the small tensor's result
  std::vector<float> x(100), y(100), g = ramp(100, 0.1f);
  Optimizer eight({Param::of(x, g)}, all), kept({Param::of(y, g)}, eight_bit());
  for (int s = 0; s < 3; ++s) eight.step(), kept.step();
  EXPECT_NE(x, y);
}

TEST(State8Optimizer, Float64ParametersAreRefusedByName) {
  std::vector<double> p(5000), g(5000);
  try {
    Optimizer opt({Param::of(p, g)}, eight_bit());
    FAIL() << "accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("state_dtype=int8"), std::string::npos) << e.what();
  }
}

// One step from zero state: v = (1 − ρ)g² is read back within the code's bound on sqrt(v), so
// each element's update is within that relative bound of the float32-state update.
TEST(State8Optimizer, TheFirstStepIsWithinTheCodesBoundOfFloat32State) {
  const std::size_t n = 4096;
  std::vector<float> a(n, 1.0f), b(n, 1.0f), g = ramp(n, 0.01f);
  Optimizer eight({Param::of(a, g)}, eight_bit()), full({Param::of(b, g)}, Options{});
  eight.step();
  full.step();
  eight.step();  // the second step reads the 8-bit square_avg
  full.step();
  for (std::size_t i = 0; i < n; ++i) {
    const double d8 = 1.0 - a[i], d32 = 1.0 - b[i];
    // two steps, the second one's denominator off by at most the bound
    ASSERT_LE(std::abs(d8 - d32), 2 * kFractionBound * std::abs(d32) + 1e-6) << i;
  }
}

TEST(State8Optimizer, StateConvertsToEightBitAndBack) {
  const std::size_t n = 5000;
  std::vector<float> p(n), g = ramp(n, 0.05f);
  Options o;
  o.momentum = 0.9, o.centered = true;
  Optimizer opt({Param::of(p, g)}, o);
  opt.step();
  const auto before = opt.state_values(0, 0, "square_avg");
  opt.set_options(0, eight_bit(o));
  opt.step();
  EXPECT_EQ(opt.state_dtype(0, 0), DType::i8_block);
  opt.set_options(0, o);
  opt.step();
  EXPECT_EQ(opt.state_dtype(0, 0), DType::f32);
  EXPECT_EQ(opt.state_values(0, 0, "momentum_buffer").size(), n);
  EXPECT_EQ(before.size(), n);
}

// A CUDA parameter's 8-bit state is made on the host and copied to the device
// (initialize_state): never written there as if it were host memory. Without a device the
// copy fails with the backend's error and the buffer is untouched; tests/cuda/cuda_test.cpp
// checks the bytes on a GPU.
TEST(State8Planner, ACudaParametersStateIsStagedThroughTheHostNotWrittenInPlace) {
  if (cuda::device_count() > 0) GTEST_SKIP() << "a GPU: tests/cuda checks the staged copy";
  const std::size_t n = 300;
  std::vector<float> param(n, 1.0f), old(n, 0.25f);
  std::vector<std::uint8_t> made(state8_bytes(n), 0xAB);
  ParamView view;
  view.param = BufferView::of(param.data(), DType::f32, n, Device::cuda(0));
  view.state[std::size_t(Slot::square_avg)] =
      BufferView::of(old.data(), DType::f32, n, Device::cuda(0));
  for (const auto init : {StateRequest::Init::value, StateRequest::Init::from_old}) {
    StateRequest r{0, Slot::square_avg, DType::i8_block, n};
    r.init = init, r.value = 0.5;
    EXPECT_THROW(initialize_state(r, view, made.data()), Error);
    EXPECT_EQ(made, std::vector<std::uint8_t>(state8_bytes(n), 0xAB));
  }
  // The same request for a host parameter writes the host buffer.
  view.param.device = view.state[std::size_t(Slot::square_avg)].device = Device{};
  StateRequest r{0, Slot::square_avg, DType::i8_block, n};
  r.init = StateRequest::Init::from_old;
  initialize_state(r, view, made.data());
  // sqrt(v) is coded within kFractionBound (relative), so v within (1 + bound)^2 - 1
  const double bound = (1 + kFractionBound) * (1 + kFractionBound) - 1;
  for (double v : kernels::load_state(DType::i8_block, true, made.data(), n)) {
    ASSERT_NEAR(v, 0.25, 0.25 * bound);
  }
}

TEST(State8Optimizer, AGradientsNaNUnderPropagateSpoilsOnlyItsElement) {
  const std::size_t n = 5000;
  std::vector<float> p(n), g = ramp(n, 0.05f);
  Options o = eight_bit();
  o.non_finite = NonFinitePolicy::propagate;
  Optimizer opt({Param::of(p, g)}, o);
  g[7] = std::numeric_limits<float>::quiet_NaN();
  opt.step();
  const auto v = opt.state_values(0, 0, "square_avg");
  EXPECT_TRUE(std::isnan(v[7]));
  for (std::size_t i = 0; i < 256; ++i) {
    if (i != 7) {
      EXPECT_TRUE(std::isfinite(v[i]) && v[i] > 0) << i;
    }
  }
}

class State8CheckpointFile : public ::testing::Test {
 protected:
  std::filesystem::path path = std::filesystem::temp_directory_path() /
                               ("rmsprop_state8_" + std::to_string(::getpid()) + ".ckpt");
  void TearDown() override { std::filesystem::remove(path); }
};

TEST_F(State8CheckpointFile, RoundTripsAndResumesBitwise) {
  const std::size_t n = 5000;
  Options o = eight_bit();
  o.momentum = 0.9, o.centered = true;
  std::vector<float> straight(n), resumed(n), g = ramp(n, 0.05f);
  Optimizer a({Param::of(straight, g)}, o);
  for (int s = 0; s < 6; ++s) a.step();
  Optimizer b({Param::of(resumed, g)}, o);
  for (int s = 0; s < 3; ++s) b.step();
  b.save(path);
  std::vector<float> copy = resumed;
  Optimizer c({Param::of(copy, g)}, Options{});
  c.load(path);
  EXPECT_EQ(c.state_dtype(0, 0), DType::i8_block);
  EXPECT_EQ(c.state_values(0, 0, "grad_avg"), b.state_values(0, 0, "grad_avg"));
  for (int s = 0; s < 3; ++s) c.step();
  EXPECT_EQ(std::memcmp(copy.data(), straight.data(), n * sizeof(float)), 0);
}

// tests/recorded/checkpoint-v1.ckpt: written by the format's version 1 (before 8-bit state)
// after 3 steps of this run (float32 state, centered + momentum; its gradients are exact in
// float32, so every machine computes the same bits).
TEST(State8Checkpoint, AVersionOneFileStillLoads) {
  std::vector<float> a(300), b(7), ga(300), gb(7);
  for (std::size_t j = 0; j < 300; ++j) a[j] = float(j % 5) * 0.5f - 1.0f;
  for (std::size_t j = 0; j < 7; ++j) b[j] = float(j % 3) * 0.25f;
  Options o;
  o.lr = 0.01, o.momentum = 0.9, o.centered = true;
  Optimizer run({Param::of(a, ga), Param::of(b, gb)}, o);
  for (int s = 0; s < 3; ++s) {
    for (std::size_t j = 0; j < 300; ++j) ga[j] = float(int(j % 7) - 3) * 0.25f + s * 0.125f;
    for (std::size_t j = 0; j < 7; ++j) gb[j] = float(int(j % 7) - 3) * 0.25f + s * 0.125f;
    run.step();
  }
  Optimizer loaded({Param::of(a, ga), Param::of(b, gb)}, Options{});
  loaded.load(std::string(RMSPROP_RECORDED_DIR) + "/checkpoint-v1.ckpt");
  EXPECT_EQ(loaded.options(0), o);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(loaded.step_count(0, i), 3);
    for (const char* buffer : {"square_avg", "grad_avg", "momentum_buffer"}) {
      EXPECT_EQ(loaded.state_values(0, i, buffer), run.state_values(0, i, buffer)) << buffer;
    }
  }
}

}  // namespace
}  // namespace rmsprop
