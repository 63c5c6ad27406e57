// The fused kernel against the scalar reference: every variant, dtype, SIMD target and thread
// count, odd lengths, unaligned starts and mixed tensor lists, bitwise.
//
// Bitwise, not within ulps: the rule is elementwise and has no fused multiply-add (NOTE: [no
// fused multiply-add]), and sqrt and division are correctly rounded in every SIMD unit, so
// each lane performs the reference's exact IEEE operations.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

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

// Options for a canonical variant, with non-trivial values for every scalar.
Options options_for(const Variant& v) {
  Options o;
  if (v.denominator == Denominator::none) o = Options::sgd(0.05);
  if (v.numerator == Numerator::grad_avg) o = Options::adam(0.01);
  o.centered = v.centered;
  o.eps_in_sqrt = v.eps_in_sqrt;
  if (v.momentum != MomentumKind::none) o.momentum = 0.9;
  o.nesterov = v.momentum == MomentumKind::nesterov;
  o.lr_in_momentum = v.lr_in_momentum;
  if (v.weight_decay != WeightDecay::none) o.weight_decay = 0.01;
  o.decoupled_weight_decay = v.weight_decay == WeightDecay::decoupled;
  if (v.denominator == Denominator::rms && v.numerator == Numerator::gradient) {
    o.bias_correction = true, o.maximize = true, o.eps = 1e-3;
  }
  return o;
}

// Buffers for one tensor, starting `offset` elements into their allocation (unaligned).
template <class T>
struct Buffers {
  std::vector<T> param, grad, square_avg, grad_avg, momentum;
  std::size_t offset, size;

  Buffers(std::size_t n, std::size_t offset_, std::uint64_t seed) : offset(offset_), size(n) {
    testing::SplitMix64 rng(seed);
    auto fill = [&](std::vector<T>& b, double scale, double shift) {
      b.resize(n + offset);
      for (T& x : b) x = T(shift + scale * rng.uniform());
    };
    fill(param, 1, 0), fill(grad, 3, 0), fill(square_avg, 0.5, 0.5), fill(grad_avg, 0.1, 0);
    fill(momentum, 0.2, 0);
  }
  TensorTask task(const Options& o) {
    return {param.data() + offset,    grad.data() + offset,     square_avg.data() + offset,
            grad_avg.data() + offset, momentum.data() + offset, size,
            coefficients(o, 3, o.lr)};
  }
  bool operator==(const Buffers& b) const {
    auto same = [](const std::vector<T>& x, const std::vector<T>& y) {
      return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(T)) == 0;
    };
    return same(param, b.param) && same(square_avg, b.square_avg) && same(grad_avg, b.grad_avg) &&
           same(momentum, b.momentum);
  }
};

template <class T>
constexpr DType dtype_of = std::is_same_v<T, float> ? DType::f32 : DType::f64;

// Runs reference and fused on the same list of tensors (given sizes and offsets) for every
// canonical variant, target and a thread count, and requires identical bits.
template <class T>
void compare_all(const std::vector<std::size_t>& sizes, const std::vector<std::size_t>& offsets,
                 int threads) {
  std::vector<Buffers<T>> pristine, expected, actual;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    pristine.emplace_back(sizes[k], offsets[k % offsets.size()], 100 + k);
  }
  for (std::size_t i = 0; i < kNumVariantIndices; ++i) {
    if (!is_canonical(i)) continue;
    const Variant v = variant_at(i);
    const Options o = options_for(v);
    ASSERT_EQ(variant_of(o), v);
    for (SimdTarget target : available_simd_targets()) {
      SCOPED_TRACE("variant " + std::to_string(i) + " target " + std::string(to_string(target)) +
                   " threads " + std::to_string(threads));
      expected = pristine;  // copies reuse the allocations after the first round
      actual = pristine;
      std::vector<TensorTask> ref_tasks, fused_tasks;
      for (auto& b : expected) ref_tasks.push_back(b.task(o));
      for (auto& b : actual) fused_tasks.push_back(b.task(o));
      reference_step(v, dtype_of<T>, ref_tasks);
      fused_step(v, dtype_of<T>, fused_tasks, {threads, target});
      for (std::size_t k = 0; k < sizes.size(); ++k) {
        ASSERT_TRUE(expected[k] == actual[k]) << "tensor " << k << " of size " << sizes[k];
      }
    }
  }
}

const std::vector<std::size_t> kOddSizes = {0, 1, 15, 16, 17, 31, 33, 255, 257, 4097};

TEST(FusedKernel, MatchesReferenceBitwiseFloatOddSizesUnaligned) {
  compare_all<float>(kOddSizes, {0, 1, 3}, 1);
}
TEST(FusedKernel, MatchesReferenceBitwiseDoubleOddSizesUnaligned) {
  compare_all<double>(kOddSizes, {0, 1, 3}, 1);
}
TEST(FusedKernel, MatchesReferenceBitwiseOnALargeTensorWithThreads) {
  compare_all<float>({1000003}, {1}, 2);
  compare_all<double>({1000003}, {0}, 3);
}
TEST(FusedKernel, MatchesReferenceBitwiseOnAMixedListWithThreads) {
  std::vector<std::size_t> sizes;
  for (std::size_t k = 0; k < 40; ++k) sizes.push_back((k * 7919) % 20000 + (k % 3));
  compare_all<float>(sizes, {0, 2, 5}, 2);
}

TEST(FusedKernel, OneThreadAndManyThreadsGiveTheSameBits) {
  const Options o = options_for(variant_at(kernels::index_of(variant_of([] {
    Options x;
    x.centered = true, x.momentum = 0.9;
    return x;
  }()))));
  Buffers<float> one(300001, 0, 5), many(300001, 0, 5);
  auto t1 = one.task(o), tn = many.task(o);
  fused_step(variant_of(o), DType::f32, {&t1, 1}, {1, {}});
  fused_step(variant_of(o), DType::f32, {&tn, 1}, {4, {}});
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
  for (SimdTarget t : targets) std::printf(" %s", std::string(to_string(t)).c_str());
  std::printf("; default %s\n", std::string(to_string(default_simd_target())).c_str());
}

}  // namespace
}  // namespace rmsprop
