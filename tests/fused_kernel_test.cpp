// The fused kernel against the scalar reference: every variant, dtype, SIMD target and thread
// count, odd lengths, unaligned starts and mixed tensor lists, bitwise.
//
// Bitwise, not within ulps: the rule is elementwise and has no fused multiply-add (NOTE: [no
// fused multiply-add]), and sqrt and division are correctly rounded in every SIMD unit, so
// each lane performs the reference's exact IEEE operations.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "kernel_buffers.hpp"
#include "kernels/apply.hpp"
#include "kernels/storage.hpp"
#include "kernels/variant_table.hpp"
#include "rmsprop/error.hpp"
#include "rmsprop/kernel.hpp"
#include "rmsprop/optimizer.hpp"
#include "test_util.hpp"

namespace rmsprop {
namespace {

using kernels::is_canonical;
using kernels::kNumVariantIndices;
using kernels::variant_at;

using testing::all_variants;
using testing::Buffers;
using testing::describe;
using testing::options_for;
using testing::representative_variants;
using testing::supported_precisions;

// Runs reference and fused on the same list of tensors (given sizes and offsets) for the
// given variants, every target and a thread count, and requires identical bytes.
void compare(const Precision& precision, const std::vector<Variant>& variants,
             const std::vector<std::size_t>& sizes, const std::vector<std::size_t>& offsets,
             int threads) {
  std::vector<Buffers> pristine, expected, actual;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    pristine.emplace_back(precision, sizes[k], offsets[k % offsets.size()], 100 + k);
  }
  for (const Variant& v : variants) {
    const Options o = options_for(v);
    ASSERT_EQ(variant_of(o), v);
    for (SimdTarget target : available_simd_targets()) {
      SCOPED_TRACE(describe(precision) + " variant " + std::to_string(kernels::index_of(v)) +
                   " target " + std::string(to_string(target)) + " threads " +
                   std::to_string(threads));
      expected = pristine;  // copies reuse the allocations after the first round
      actual = pristine;
      std::vector<TensorTask> ref_tasks, fused_tasks;
      for (auto& b : expected) ref_tasks.push_back(b.task(o));
      for (auto& b : actual) fused_tasks.push_back(b.task(o));
      reference_step(v, precision, ref_tasks);
      fused_step(v, precision, fused_tasks, {threads, target});
      for (std::size_t k = 0; k < sizes.size(); ++k) {
        ASSERT_TRUE(expected[k] == actual[k]) << "tensor " << k << " of size " << sizes[k];
      }
    }
  }
}

const std::vector<std::size_t> kOddSizes = {0, 1, 15, 16, 17, 31, 33, 255, 257, 4097};

TEST(FusedKernel, MatchesReferenceBitwiseForEveryVariantAndPrecisionOddSizesUnaligned) {
  for (const Precision& p : supported_precisions())
    compare(p, all_variants(), kOddSizes, {0, 1, 3}, 1);
}

TEST(FusedKernel, MatchesReferenceBitwiseOnALargeTensorWithThreads) {
  for (const Precision& p : supported_precisions()) {
    const bool plain = p == Precision::of(DType::f32) || p == Precision::of(DType::f64);
    compare(p, plain ? all_variants() : representative_variants(), {1000003}, {1}, 2);
  }
}

TEST(FusedKernel, MatchesReferenceBitwiseOnAMixedListWithThreads) {
  std::vector<std::size_t> sizes;
  for (std::size_t k = 0; k < 40; ++k) sizes.push_back((k * 7919) % 20000 + (k % 3));
  compare(Precision::of(DType::f32), all_variants(), sizes, {0, 2, 5}, 2);
  compare({DType::bf16, DType::bf16, false, true}, representative_variants(), sizes, {0, 1}, 3);
}

TEST(FusedKernel, OneThreadAndManyThreadsGiveTheSameBits) {
  const Options o = options_for(variant_at(kernels::index_of(variant_of([] {
    Options x;
    x.centered = true, x.momentum = 0.9;
    return x;
  }()))));
  const Precision p{DType::bf16, DType::f32, true, true};
  Buffers one(p, 300001, 0, 5), many(p, 300001, 0, 5);
  auto t1 = one.task(o), tn = many.task(o);
  fused_step(variant_of(o), p, {&t1, 1}, {1, {}});
  fused_step(variant_of(o), p, {&tn, 1}, {4, {}});
  EXPECT_TRUE(one == many);
}

TEST(FusedKernel, BadConfigurationIsRefused) {
  EXPECT_THROW(fused_step(Variant{}, DType::f32, {}, {-1, {}}), InvalidArgument);
  std::vector<float> p(4), g(4);
  Optimizer opt({Param::of(p, g)}, Options{});
  EXPECT_THROW(opt.set_kernel_config({-2, {}}), InvalidArgument);
  EXPECT_NO_THROW(opt.set_kernel_config({1, SimdTarget::baseline}));
}

TEST(FusedKernel, ReportsItsTargets) {
  const auto targets = available_simd_targets();
  ASSERT_FALSE(targets.empty());
  EXPECT_EQ(targets.front(), SimdTarget::baseline);
  std::printf("SIMD targets here:");
  for (std::size_t k = 0; k < targets.size(); ++k) {
    const SimdTarget t = targets[k];
    std::printf(" %s", std::string(to_string(t)).c_str());
    EXPECT_NE(to_string(t), "?");
    // listed weakest first, each once
    if (k > 0) {
      EXPECT_LT(int(targets[k - 1]), int(t)) << to_string(t);
    }
    // every listed target runs here, and gives the reference's bits
    std::vector<float> p = {1.5f, -2.0f, 0.25f}, g = {0.5f, 1.0f, -3.0f}, sq(3, 0.0f);
    std::vector<float> rp = p, rsq = sq;
    TensorTask task{p.data(), g.data(), sq.data(), nullptr, nullptr, 3};
    task.coefficients = coefficients(Options{}, 1, 1e-2);
    TensorTask ref = task;
    ref.param = rp.data(), ref.square_avg = rsq.data();
    const Variant v = variant_of(Options{});
    KernelConfig config{1, t};
    fused_step(v, DType::f32, {&task, 1}, config);
    reference_step(v, DType::f32, {&ref, 1});
    EXPECT_EQ(std::memcmp(p.data(), rp.data(), sizeof(float) * 3), 0) << to_string(t);
  }
  // the default is the strongest target, unless RMSPROP_SIMD names another listed one
  const SimdTarget chosen = default_simd_target();
  EXPECT_NE(std::find(targets.begin(), targets.end(), chosen), targets.end());
  if (std::getenv("RMSPROP_SIMD") == nullptr) {
    EXPECT_EQ(chosen, targets.back());
  }
  std::printf("; default %s\n", std::string(to_string(chosen)).c_str());
}

}  // namespace
}  // namespace rmsprop

namespace rmsprop {
namespace {

TEST(FindNonFinite, FirstHitOverAListIsTheSameForAnyThreadCount) {
  std::vector<float> a(100000, 1.0f), b(70000, 2.0f);
  std::vector<double> c(5, 0.0);
  b[65536 + 7] = std::numeric_limits<float>::infinity();
  c[3] = std::nan("");
  const std::vector<ConstBuffer> list = {{a.data(), DType::f32, a.size()},
                                         {b.data(), DType::f32, b.size()},
                                         {c.data(), DType::f64, 5}};
  for (int threads : {1, 2, 3}) {
    const auto hit = find_non_finite(list, threads);
    ASSERT_TRUE(hit.has_value());
    EXPECT_EQ(hit->first, 1u);
    EXPECT_EQ(hit->second, 65543u);
  }
  EXPECT_FALSE(find_non_finite(std::span(list).first(1), 2).has_value());
}

}  // namespace
}  // namespace rmsprop
