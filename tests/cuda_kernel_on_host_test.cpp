// The CUDA step kernel's body run on the host: the real launch planning (plan_step_launches)
// and the real block functions (step_block; for 8-bit state State8Warp's lane functions),
// every block and every thread in turn, against the scalar reference, bitwise. Threads of the
// step kernel share nothing, and the 8-bit kernel's lanes share only the warp's max, so running
// them one after another gives the device's results; this checks the kernels' walk over chunks,
// packs, 8-bit blocks, remainders, coefficient sets and capturable step counting on any
// machine. What it cannot
// check (the launch itself, device memory, streams, graphs) is in tests/cuda/cuda_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "cuda/launch.hpp"
#include "cuda/state8_block.hpp"
#include "cuda/step_block.hpp"
#include "kernel_buffers.hpp"

namespace rmsprop::cuda::detail {
namespace {

using namespace rmsprop::testing;

// Block `block` of a launch as the device runs it: every thread of the step kernel in turn;
// for 8-bit state, every warp's blocks, each as all lanes' update, the warp's max, all lanes'
// store (the order the kernel's shuffles impose).
template <Variant kV, Precision kP>
void run_block(const StepLaunch& launch, unsigned block) {
  if constexpr (kP.state == DType::i8_block) {
    using W = State8Warp<kV, kP>;
    BlockWork<typename W::C> work;
    if (!block_work(launch, block, work)) return;
    const unsigned warps = unsigned(kBlockThreads) / kWarpLanes;
    for (unsigned warp = 0; warp < warps; ++warp) {
      for_each_warp_block(work, warp, warps, [&](std::size_t start) {
        typename W::Lane lanes[kWarpLanes];
        std::uint32_t absmax[3] = {0, 0, 0};
        for (unsigned lane = 0; lane < kWarpLanes; ++lane) {
          W::update(*work.tensor, start, lane, work.c, work.seed, lanes[lane]);
          for (int s = 0; s < 3; ++s) absmax[s] = std::max(absmax[s], lanes[lane].absmax[s]);
        }
        for (unsigned lane = 0; lane < kWarpLanes; ++lane) {
          W::store(*work.tensor, start, lane, lanes[lane], absmax);
        }
      });
    }
  } else {
    for (unsigned t = 0; t < unsigned(kBlockThreads); ++t) {
      step_block<kV, kP>(launch, block, t, kBlockThreads);
    }
  }
}

using BlockFn = void (*)(const StepLaunch&, unsigned);

template <std::size_t kPrecision, std::size_t... kVariant>
constexpr std::array<BlockFn, kernels::kNumVariantIndices> block_row(
    std::index_sequence<kVariant...>) {
  return {[] {
    if constexpr (kernels::is_canonical(kVariant)) {
      return &run_block<kernels::variant_at(kVariant), kernels::precision_at(kPrecision)>;
    } else {
      return BlockFn{};
    }
  }()...};
}

// The precisions emulated (the device compiles all; the element kernel they share is checked
// for all of them by the CPU kernel tests): float32, float64, and bfloat16 with master weights
// and stochastic rounding (16-bit packs, the master buffer, the rounding counter); 8-bit state
// (the warp's lanes, the codec) under float32, float16 and bfloat16 with master weights and
// stochastic rounding.
constexpr Precision kBf16Master{DType::bf16, DType::f32, true, true};
constexpr Precision kF32State8{DType::f32, DType::i8_block, false, false};
constexpr Precision kF16State8{DType::f16, DType::i8_block, false, false};
constexpr Precision kBf16MasterState8{DType::bf16, DType::i8_block, true, true};
constexpr std::size_t kPrecisions[] = {kernels::index_of(Precision::of(DType::f32)),
                                       kernels::index_of(Precision::of(DType::f64)),
                                       kernels::index_of(kBf16Master),
                                       kernels::index_of(kF32State8),
                                       kernels::index_of(kF16State8),
                                       kernels::index_of(kBf16MasterState8)};

template <std::size_t kPrecision>
constexpr auto kRow =
    block_row<kPrecision>(std::make_index_sequence<kernels::kNumVariantIndices>{});

template <std::size_t... kI>
BlockFn block_fn(std::size_t pi, std::size_t vi, std::index_sequence<kI...>) {
  BlockFn fn = nullptr;
  ((pi == kPrecisions[kI] ? fn = kRow<kPrecisions[kI]>[vi] : fn), ...);
  return fn;
}

BlockFn block_fn(const Precision& p, const Variant& v) {
  return block_fn(kernels::index_of(p), kernels::index_of(v),
                  std::make_index_sequence<std::size(kPrecisions)>{});
}

// What the backend's launches do, on the host: count steps (capturable), then every thread of
// every block.
void emulate(const Variant& v, const Precision& p, std::span<const TensorTask> tasks,
             std::span<std::int64_t* const> steps, StepLaunch& launch, int* launches = nullptr) {
  const BlockFn fn = block_fn(p, v);
  ASSERT_NE(fn, nullptr);
  plan_step_launches(v, p, tasks, steps, launch, [&](int blocks, int tensors) {
    if (launches) ++*launches;
    EXPECT_EQ(launch.tensor_count, tensors);
    if (launch.lr != nullptr) {
      for (int k = 0; k < kMaxTensors; ++k) count_step(launch, k, tensors);
    }
    for (int b = 0; b < blocks; ++b) fn(launch, unsigned(b));
  });
}

std::vector<Precision> emulated_precisions() {
  return {Precision::of(DType::f32), Precision::of(DType::f64), kBf16Master, kF32State8, kF16State8,
          kBf16MasterState8};
}

TEST(CudaKernelOnHost, MatchesReferenceBitwiseForEveryVariantOddSizesAlignedAndNot) {
  // Sizes around the 16-byte pack and the chunk; offsets 0 (whole packs) and 1, 3 (element by
  // element); each tensor its own step (several coefficient sets per launch).
  const std::vector<std::size_t> sizes = {0,
                                          1,
                                          3,
                                          7,
                                          8,
                                          9,
                                          17,
                                          kChunkElements - 1,
                                          kChunkElements,
                                          kChunkElements + 1,
                                          2 * kChunkElements + 5};
  const std::vector<std::size_t> offsets = {0, 1, 0, 3};
  for (const Precision& p : emulated_precisions()) {
    std::vector<Buffers> pristine;
    for (std::size_t k = 0; k < sizes.size(); ++k) {
      pristine.emplace_back(p, sizes[k], offsets[k % offsets.size()], 300 + k);
    }
    for (const Variant& v : all_variants()) {
      SCOPED_TRACE(describe(p) + " variant " + std::to_string(kernels::index_of(v)));
      const Options o = options_for(v);
      std::vector<Buffers> expected = pristine, actual = pristine;
      std::vector<TensorTask> ref, emu;
      for (std::size_t k = 0; k < sizes.size(); ++k) {
        ref.push_back(expected[k].task(o)), emu.push_back(actual[k].task(o));
        ref[k].coefficients = emu[k].coefficients = coefficients(o, 1 + k % 7, o.lr);
        ref[k].rounding_seed = emu[k].rounding_seed = 77 + std::uint32_t(k);
      }
      reference_step(v, p, ref);
      StepLaunch launch{};
      emulate(v, p, emu, {}, launch);
      for (std::size_t k = 0; k < sizes.size(); ++k) {
        ASSERT_TRUE(expected[k] == actual[k]) << "tensor " << k << " of size " << sizes[k];
      }
    }
  }
}

TEST(CudaKernelOnHost, LongListsSpanSeveralLaunchesAndCoefficientSets) {
  std::vector<std::size_t> sizes;
  for (std::size_t k = 0; k < 60; ++k) sizes.push_back((k * 7919) % 300000 + k % 5);
  const Precision p = Precision::of(DType::f32);
  Options o;
  o.centered = true, o.momentum = 0.9, o.bias_correction = true;
  const Variant v = variant_of(o);
  std::vector<Buffers> expected, actual;
  for (std::size_t k = 0; k < sizes.size(); ++k) expected.emplace_back(p, sizes[k], k % 2, k);
  actual = expected;
  std::vector<TensorTask> ref, emu;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    ref.push_back(expected[k].task(o)), emu.push_back(actual[k].task(o));
    ref[k].coefficients = emu[k].coefficients = coefficients(o, 1 + k % 9, o.lr);  // 9 sets
  }
  reference_step(v, p, ref);
  StepLaunch launch{};
  int launches = 0;
  emulate(v, p, emu, {}, launch, &launches);
  EXPECT_GT(launches, 3);
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    ASSERT_TRUE(expected[k] == actual[k]) << "tensor " << k << " of size " << sizes[k];
  }
}

// One precision's capturable steps: see the test below.
void check_capturable_steps(const Precision& p) {
  SCOPED_TRACE(describe(p));
  // Tensors over several launches (more than one launch holds), empty ones included.
  std::vector<std::size_t> sizes = {5, 0, 20 * kChunkElements + 3, 17, 0, 100000};
  for (std::size_t k = 0; k < kMaxTensors; ++k) sizes.push_back(k % 3 == 0 ? 0 : 40 + k);
  Options o;
  o.momentum = 0.9, o.centered = true, o.bias_correction = true, o.weight_decay = 1e-2;
  o.decoupled_weight_decay = true;
  const Variant v = variant_of(o);
  std::vector<Buffers> expected, actual;
  for (std::size_t k = 0; k < sizes.size(); ++k) expected.emplace_back(p, sizes[k], 0, 40 + k);
  actual = expected;
  std::vector<std::int64_t> counters = {0, 3, 7, 0, 1, 2};  // steps taken so far, per tensor
  counters.resize(sizes.size(), 4);
  std::vector<std::int64_t> after_three = counters;
  for (auto& c : after_three) c += 3;
  const double lr = 3e-3;
  std::int32_t skip = 0;
  for (int round = 0; round < 3; ++round) {
    std::vector<TensorTask> ref, emu;
    std::vector<std::int64_t*> steps;
    for (std::size_t k = 0; k < sizes.size(); ++k) {
      ref.push_back(expected[k].task(o)), emu.push_back(actual[k].task(o));
      ref[k].rounding_seed = emu[k].rounding_seed = 5 + std::uint32_t(k);
      // What the device does with a capturable step's seed and coefficients.
      const std::int64_t step = counters[k] + 1;
      ref[k].coefficients = coefficients(o, step, lr);
      ref[k].rounding_seed ^= std::uint32_t(step) * 0x9E3779B9u;
      steps.push_back(&counters[k]);
    }
    reference_step(v, p, ref);
    StepLaunch launch{};
    launch.lr = &lr, launch.skip = &skip, launch.recipe = coefficient_recipe(o);
    emulate(v, p, emu, steps, launch);
    for (std::size_t k = 0; k < sizes.size(); ++k) {
      ASSERT_TRUE(expected[k] == actual[k]) << "round " << round << " tensor " << k;
    }
  }
  EXPECT_EQ(counters, after_three);
  // With the skip flag set nothing changes, steps included.
  skip = 1;
  const std::vector<Buffers> before = actual;
  std::vector<TensorTask> emu;
  std::vector<std::int64_t*> steps;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    emu.push_back(actual[k].task(o)), steps.push_back(&counters[k]);
  }
  StepLaunch launch{};
  launch.lr = &lr, launch.skip = &skip, launch.recipe = coefficient_recipe(o);
  emulate(v, p, emu, steps, launch);
  EXPECT_EQ(counters, after_three);
  for (std::size_t k = 0; k < sizes.size(); ++k) EXPECT_TRUE(before[k] == actual[k]);
}

TEST(CudaKernelOnHost, CapturableStepsCountEachTensorOnceAndEqualHostCoefficients) {
  check_capturable_steps(kBf16Master);
  check_capturable_steps(kBf16MasterState8);
}

}  // namespace
}  // namespace rmsprop::cuda::detail
