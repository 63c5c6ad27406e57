// The reference kernel and its dispatch table: every canonical variant is reachable from
// options, touches exactly the buffers it declares, and refuses missing ones.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/variant_table.hpp"
#include "rmsprop/error.hpp"
#include "rmsprop/kernel.hpp"
#include "test_util.hpp"

namespace rmsprop {
namespace {

using kernels::canonical;
using kernels::is_canonical;
using kernels::kNumVariantIndices;
using kernels::variant_at;

using testing::options_for;

TEST(VariantTable, IndexAndVariantAreInverses) {
  for (std::size_t i = 0; i < kNumVariantIndices; ++i) {
    EXPECT_EQ(kernels::index_of(variant_at(i)), i);
  }
}

TEST(VariantTable, EveryCanonicalVariantIsWhatSomeOptionsAskFor) {
  std::size_t canonical_count = 0;
  for (std::size_t i = 0; i < kNumVariantIndices; ++i) {
    if (!is_canonical(i)) continue;
    ++canonical_count;
    const Variant v = variant_at(i);
    const Options o = options_for(v);
    EXPECT_NO_THROW(o.validate()) << "variant " << i;
    EXPECT_EQ(variant_of(o), v) << "variant " << i;
  }
  // rms: (plain, centered, adam) x 5 momentum kinds x eps placement x 3 weight decays = 90;
  // sgd: 5 momentum kinds x 3 weight decays = 15.
  EXPECT_EQ(canonical_count, 105u);
}

TEST(VariantTable, VariantOfAlwaysGivesACanonicalVariant) {
  for (std::size_t i = 0; i < kNumVariantIndices; ++i) {
    const Options o = options_for(canonical(variant_at(i)));
    EXPECT_EQ(canonical(variant_of(o)), variant_of(o));
  }
}

// Walks the whole table for both dtypes: each variant reads and writes the buffers it
// declares and leaves the others alone, gives finite results, and moves the parameter.
template <class T>
void walk_table() {
  const T sentinel = T(-12345);
  for (std::size_t i = 0; i < kNumVariantIndices; ++i) {
    if (!is_canonical(i)) continue;
    const Variant v = variant_at(i);
    SCOPED_TRACE("variant " + std::to_string(i));
    std::vector<T> param = {1, -2, 0.5}, grad = {0.3, -0.1, 2};
    std::vector<T> sq(3, sentinel), avg(3, sentinel), mom(3, sentinel);
    if (v.uses_square_avg()) sq.assign(3, T(0.5));
    if (v.uses_grad_avg()) avg.assign(3, T(0.1));
    if (v.uses_momentum_buffer()) mom.assign(3, T(0));
    TensorTask task{param.data(),
                    grad.data(),
                    sq.data(),
                    avg.data(),
                    mom.data(),
                    3,
                    coefficients(options_for(v), 1, 0.01)};
    reference_step(v, std::is_same_v<T, float> ? DType::f32 : DType::f64, {&task, 1});
    for (std::size_t j = 0; j < 3; ++j) {
      EXPECT_TRUE(std::isfinite(param[j]));
      EXPECT_NE(param[j], (std::vector<T>{1, -2, 0.5})[j]);
      EXPECT_EQ(sq[j] == sentinel, !v.uses_square_avg());
      EXPECT_EQ(avg[j] == sentinel, !v.uses_grad_avg());
      EXPECT_EQ(mom[j] == sentinel, !v.uses_momentum_buffer());
    }
  }
}

TEST(ReferenceKernel, WalksTheWholeTableFloat) {
  walk_table<float>();
}
TEST(ReferenceKernel, WalksTheWholeTableDouble) {
  walk_table<double>();
}

TEST(ReferenceKernel, MissingBuffersAreRefusedBeforeAnyWork) {
  Options o;
  o.momentum = 0.9;
  std::vector<float> p = {1}, g = {1}, sq = {0};
  TensorTask ok{p.data(), g.data(), sq.data(), nullptr, nullptr, 1, coefficients(o, 1, 0.1)};
  TensorTask tasks[] = {ok, ok};
  tasks[1].momentum_buffer = nullptr;
  try {
    reference_step(variant_of(o), DType::f32, tasks);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "tensor 0: momentum_buffer is null but this variant needs it");
  }
  EXPECT_EQ(p[0], 1);
  TensorTask empty{};  // zero elements need no buffers
  EXPECT_NO_THROW(reference_step(variant_of(o), DType::f32, {&empty, 1}));
}

TEST(ReferenceKernel, CenteredVarianceIsClampedAtZero) {
  // v − m² < 0 by rounding would give sqrt(negative) = NaN in every framework; we clamp.
  Options o;
  o.centered = true, o.eps = 1e-8;
  std::vector<float> p = {1}, g = {1}, sq = {0.25f}, avg = {0.5000001f};
  TensorTask t{p.data(), g.data(), sq.data(), avg.data(), nullptr, 1, coefficients(o, 1, 0.1)};
  t.coefficients.sq_decay = 1, t.coefficients.sq_gain = 0, t.coefficients.avg_gain = 0;
  reference_step(variant_of(o), DType::f32, {&t, 1});
  EXPECT_TRUE(std::isfinite(p[0]));
  EXPECT_FLOAT_EQ(p[0], 1 - 0.1f * 1 / 1e-8f);  // d = sqrt(0) + eps
}

TEST(ReferenceKernel, FindNonFinite) {
  std::vector<double> x = {1, 2, std::numeric_limits<double>::infinity(), std::nan("")};
  std::size_t at = 99;
  EXPECT_TRUE(find_non_finite(DType::f64, x.data(), x.size(), &at));
  EXPECT_EQ(at, 2u);
  EXPECT_FALSE(find_non_finite(DType::f64, x.data(), 2, &at));
  std::vector<float> y = {0, -0.0f, 1e38f};
  EXPECT_FALSE(find_non_finite(DType::f32, y.data(), y.size(), nullptr));
}

}  // namespace
}  // namespace rmsprop
