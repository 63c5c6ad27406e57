// rmsprop::torch::RMSprop against torch::optim::RMSprop and the core optimizer, on a real
// libtorch module with a real loss and backward.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "rmsprop/cuda.hpp"
#include "rmsprop/error.hpp"
#include "rmsprop/optimizer.hpp"
#include "rmsprop/torch.hpp"
#include "test_util.hpp"

namespace {

using rmsprop::testing::error_of;

struct Net : ::torch::nn::Module {
  ::torch::nn::Linear a{nullptr}, b{nullptr};
  Net() {
    a = register_module("a", ::torch::nn::Linear(6, 8));
    b = register_module("b", ::torch::nn::Linear(8, 3));
  }
  ::torch::Tensor forward(const ::torch::Tensor& x) { return b(::torch::tanh(a(x))); }
};

std::shared_ptr<Net> make_net(c10::ScalarType dtype) {
  ::torch::manual_seed(7);
  auto net = std::make_shared<Net>();
  net->to(dtype);
  return net;
}

struct Batch {
  ::torch::Tensor x, y;
};

Batch batch(int step, c10::ScalarType dtype) {
  auto gen = ::torch::make_generator<at::CPUGeneratorImpl>(1000 + step);
  auto x = ::torch::randn({16, 6}, gen, ::torch::kDouble);
  auto y = ::torch::randn({16, 3}, gen, ::torch::kDouble);
  return {x.to(dtype), y.to(dtype)};
}

// Mean squared error, written out: mse_loss has no bfloat16 kernel in libtorch 1.13.
::torch::Tensor loss(Net& net, const Batch& b) {
  return (net.forward(b.x) - b.y).pow(2).mean();
}

void train(Net& net, ::torch::optim::Optimizer& opt, int from, int to, c10::ScalarType dtype) {
  for (int step = from; step < to; ++step) {
    const Batch b = batch(step, dtype);
    opt.zero_grad();
    loss(net, b).backward();
    opt.step();
  }
}

// ‖a − b‖ / ‖b‖ over all parameters together.
double relative_distance(Net& a, Net& b) {
  double diff = 0, norm = 0;
  auto pa = a.parameters(), pb = b.parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) {
    auto x = pa[i].to(::torch::kDouble), y = pb[i].to(::torch::kDouble);
    diff += (x - y).pow(2).sum().item<double>();
    norm += y.pow(2).sum().item<double>();
  }
  return std::sqrt(diff / norm);
}

struct TorchCase {
  double alpha, weight_decay, momentum;
  bool centered;
};

// gtest prints parameters into test names that CTest discovers: print the fields, not the
// struct's bytes (its padding is uninitialized).
void PrintTo(const TorchCase& c, std::ostream* os) {
  *os << "alpha " << c.alpha << " weight_decay " << c.weight_decay << " momentum " << c.momentum
      << (c.centered ? " centered" : "");
}

class SameAsTorch : public ::testing::TestWithParam<TorchCase> {};

// 100 steps of each. float64: equal to rounding. float32: as close to torch's float32 run as
// rounding allows, measured by torch's own float32 run against its float64 run (the same
// criterion as the golden tests: NOTE: [golden tolerances]).
TEST_P(SameAsTorch, HundredStepsFloat64AndFloat32) {
  const TorchCase c = GetParam();
  auto run = [&](bool ours, c10::ScalarType dtype) {
    auto net = make_net(dtype);
    std::unique_ptr<::torch::optim::Optimizer> opt;
    if (ours) {
      opt = std::make_unique<rmsprop::torch::RMSprop>(net->parameters(),
                                                      rmsprop::torch::RMSpropOptions(1e-2)
                                                          .alpha(c.alpha)
                                                          .weight_decay(c.weight_decay)
                                                          .momentum(c.momentum)
                                                          .centered(c.centered));
    } else {
      opt = std::make_unique<::torch::optim::RMSprop>(net->parameters(),
                                                      ::torch::optim::RMSpropOptions(1e-2)
                                                          .alpha(c.alpha)
                                                          .weight_decay(c.weight_decay)
                                                          .momentum(c.momentum)
                                                          .centered(c.centered));
    }
    train(*net, *opt, 0, 100, dtype);
    return net;
  };
  auto ours64 = run(true, ::torch::kDouble), torch64 = run(false, ::torch::kDouble);
  auto ours32 = run(true, ::torch::kFloat), torch32 = run(false, ::torch::kFloat);
  EXPECT_LT(relative_distance(*ours64, *torch64), 1e-12);
  const double torch_own_error = relative_distance(*torch32, *torch64);
  EXPECT_LT(relative_distance(*ours32, *torch32), 1e-7 + 4 * torch_own_error)
      << "torch float32 vs float64: " << torch_own_error;
  EXPECT_LT(relative_distance(*ours32, *torch64), 1e-7 + 4 * torch_own_error);
  std::printf("float64 %.3g, float32 vs torch %.3g, vs float64 %.3g, torch's own %.3g\n",
              relative_distance(*ours64, *torch64), relative_distance(*ours32, *torch32),
              relative_distance(*ours32, *torch64), torch_own_error);
}

std::string case_name(const ::testing::TestParamInfo<TorchCase>& info) {
  const TorchCase& c = info.param;
  return "alpha" + std::to_string(int(c.alpha * 100)) + "_wd" +
         std::to_string(int(c.weight_decay * 100)) + "_momentum" +
         std::to_string(int(c.momentum * 10)) + (c.centered ? "_centered" : "");
}

INSTANTIATE_TEST_SUITE_P(
    Options, SameAsTorch,
    ::testing::Values(TorchCase{0.99, 0, 0, false}, TorchCase{0.9, 0, 0, false},
                      TorchCase{0.99, 1e-2, 0, false}, TorchCase{0.99, 0, 0.9, false},
                      TorchCase{0.99, 0, 0, true}, TorchCase{0.9, 1e-2, 0.9, true}),
    case_name);

// Every flavor: the libtorch adapter and the core optimizer are the same kernels on the same
// values, so bitwise equal.
TEST(TorchOptimizer, EveryFlavorBitwiseEqualToTheCoreOptimizer) {
  for (rmsprop::Flavor flavor : rmsprop::all_flavors()) {
    auto net = make_net(::torch::kFloat);
    auto options = rmsprop::Options::from_flavor(flavor);
    options.lr = 1e-2;
    options.momentum = 0.5;
    rmsprop::torch::RMSprop ours(net->parameters(), rmsprop::torch::RMSpropOptions(options));

    std::vector<std::vector<float>> w, g;
    std::vector<rmsprop::Param> params;
    for (const auto& p : net->parameters()) {
      w.emplace_back(p.data_ptr<float>(), p.data_ptr<float>() + p.numel());
      g.emplace_back(w.back().size());
    }
    for (std::size_t i = 0; i < w.size(); ++i) params.push_back(rmsprop::Param::of(w[i], g[i]));
    rmsprop::Optimizer core(params, options);
    for (int step = 0; step < 20; ++step) {
      const Batch b = batch(step, ::torch::kFloat);
      ours.zero_grad();
      loss(*net, b).backward();
      auto ps = net->parameters();
      for (std::size_t i = 0; i < ps.size(); ++i) {
        std::copy_n(ps[i].grad().data_ptr<float>(), g[i].size(), g[i].data());
      }
      ours.step();
      core.step();
    }
    auto ps = net->parameters();
    for (std::size_t i = 0; i < ps.size(); ++i) {
      EXPECT_EQ(0, std::memcmp(ps[i].data_ptr<float>(), w[i].data(), w[i].size() * 4))
          << "flavor " << rmsprop::to_string(flavor) << " parameter " << i;
    }
  }
}

template <class Save, class Load>
void round_trip(Save& save_from, Load& load_into) {
  std::stringstream archive;
  ::torch::save(save_from, archive);
  ::torch::load(load_into, archive);
}

// Stop at step 40, hand the state to the other optimizer (and back), go on to 100: the same
// weights as never stopping.
TEST(TorchOptimizer, StateRoundTripsThroughTorchOptimizerMidTraining) {
  const auto dtype = ::torch::kDouble;
  const auto options = rmsprop::torch::RMSpropOptions(1e-2).momentum(0.9).centered(true);
  auto straight = make_net(dtype);
  rmsprop::torch::RMSprop straight_opt(straight->parameters(), options);
  train(*straight, straight_opt, 0, 100, dtype);

  auto net = make_net(dtype);
  rmsprop::torch::RMSprop first(net->parameters(), options);
  train(*net, first, 0, 40, dtype);
  // torch::optim::RMSprop::load restores the state, not the options: give them.
  ::torch::optim::RMSprop theirs(net->parameters(),
                                 ::torch::optim::RMSpropOptions(1e-2).momentum(0.9).centered(true));
  round_trip(first, theirs);
  train(*net, theirs, 40, 60, dtype);
  rmsprop::torch::RMSprop second(net->parameters(), rmsprop::torch::RMSpropOptions(0.5));
  round_trip(theirs, second);
  EXPECT_TRUE(second.defaults().get_lr() == 0.5);
  EXPECT_EQ(static_cast<rmsprop::torch::RMSpropOptions&>(second.param_groups()[0].options()).lr(),
            1e-2);
  train(*net, second, 60, 80, dtype);
  rmsprop::torch::RMSprop third(net->parameters());
  round_trip(second, third);
  train(*net, third, 80, 100, dtype);
  EXPECT_LT(relative_distance(*net, *straight), 1e-12);
}

TEST(TorchOptimizer, OursToOursIsBitwiseAndKeepsEveryOption) {
  const auto dtype = ::torch::kFloat;
  auto options = rmsprop::torch::RMSpropOptions::flavor(rmsprop::Flavor::tf1).lr(1e-3);
  options.set("nesterov", "true").momentum(0.9);
  auto straight = make_net(dtype), net = make_net(dtype);
  rmsprop::torch::RMSprop a(straight->parameters(), options), b(net->parameters(), options);
  train(*straight, a, 0, 30, dtype);
  train(*net, b, 0, 15, dtype);
  rmsprop::torch::RMSprop c(net->parameters());
  round_trip(b, c);
  EXPECT_EQ(static_cast<rmsprop::torch::RMSpropOptions&>(c.param_groups()[0].options()).core(),
            options.core());
  train(*net, c, 15, 30, dtype);
  auto pa = straight->parameters(), pb = net->parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(::torch::equal(pa[i], pb[i]));
}

TEST(TorchOptimizer, GroupsWithTheirOwnOptionsAndParametersWithoutGradient) {
  auto net = make_net(::torch::kFloat);
  auto frozen = ::torch::ones({4});
  std::vector<::torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(net->a->parameters(),
                      std::make_unique<rmsprop::torch::RMSpropOptions>(
                          rmsprop::torch::RMSpropOptions(1e-1).centered(true)));
  groups.emplace_back(std::vector<::torch::Tensor>{net->b->weight, net->b->bias, frozen});
  rmsprop::torch::RMSprop opt(std::move(groups), rmsprop::torch::RMSpropOptions(1e-3));
  const auto before_a = net->a->weight.clone(), before_b = net->b->weight.clone();
  train(*net, opt, 0, 1, ::torch::kFloat);
  // Step 1 moves each weight by about lr/sqrt(1 − alpha) (or lr/sqrt(1 − alpha) centered).
  EXPECT_NEAR((net->a->weight - before_a).abs().max().item<double>(), 1e-1 / std::sqrt(0.01 - 1e-4),
              2e-2);
  EXPECT_NEAR((net->b->weight - before_b).abs().max().item<double>(), 1e-3 / std::sqrt(0.01), 1e-4);
  EXPECT_TRUE(::torch::equal(frozen, ::torch::ones({4})));
  EXPECT_EQ(opt.state().count(rmsprop::torch::state_key(frozen)), 0u);
}

// CUDA tensors (a libtorch with CUDA and a GPU; skipped elsewhere, saying so).
#define SKIP_WITHOUT_TORCH_CUDA()                                                     \
  do {                                                                                \
    if (!::torch::cuda::is_available() || !rmsprop::cuda::built()) {                  \
      GTEST_SKIP() << "no CUDA libtorch and GPU here (torch::cuda::is_available() = " \
                   << ::torch::cuda::is_available()                                   \
                   << ", rmsprop CUDA backend built = " << rmsprop::cuda::built()     \
                   << "): this GPU test did not run";                                 \
    }                                                                                 \
  } while (0)

TEST(TorchOptimizer, OnCudaMatchesTorchOnCuda) {
  SKIP_WITHOUT_TORCH_CUDA();
  for (auto dtype : {::torch::kDouble, ::torch::kFloat}) {
    auto run = [&](bool ours) {
      auto net = make_net(dtype);
      net->to(::torch::kCUDA);
      std::unique_ptr<::torch::optim::Optimizer> opt;
      if (ours) {
        opt = std::make_unique<rmsprop::torch::RMSprop>(
            net->parameters(), rmsprop::torch::RMSpropOptions(1e-2).momentum(0.9).centered(true));
      } else {
        opt = std::make_unique<::torch::optim::RMSprop>(
            net->parameters(), ::torch::optim::RMSpropOptions(1e-2).momentum(0.9).centered(true));
      }
      for (int step = 0; step < 100; ++step) {
        Batch b = batch(step, dtype);
        b.x = b.x.to(::torch::kCUDA), b.y = b.y.to(::torch::kCUDA);
        opt->zero_grad();
        loss(*net, b).backward();
        opt->step();
      }
      return net;
    };
    auto ours = run(true), theirs = run(false);
    EXPECT_LT(relative_distance(*ours, *theirs), dtype == ::torch::kDouble ? 1e-12 : 1e-4);
  }
}

TEST(TorchOptimizer, OnCudaBitwiseEqualToOnCpuForTheSameGradients) {
  SKIP_WITHOUT_TORCH_CUDA();
  auto options = rmsprop::torch::RMSpropOptions(1e-2).momentum(0.9).centered(true);
  for (auto dtype : {::torch::kFloat, ::torch::kBFloat16}) {
    auto net = make_net(dtype);
    const Batch b = batch(0, dtype);
    loss(*net, b).backward();
    std::vector<::torch::Tensor> cpu, gpu;
    for (auto& p : net->parameters()) {
      cpu.push_back(p.detach().clone());
      cpu.back().mutable_grad() = p.grad().clone();
      gpu.push_back(p.detach().to(::torch::kCUDA));
      gpu.back().mutable_grad() = p.grad().to(::torch::kCUDA);
    }
    rmsprop::torch::RMSprop on_cpu(cpu, options), on_gpu(gpu, options);
    for (int step = 0; step < 3; ++step) on_cpu.step(), on_gpu.step();
    for (std::size_t i = 0; i < cpu.size(); ++i) {
      EXPECT_TRUE(::torch::equal(cpu[i], gpu[i].cpu())) << "parameter " << i;
    }
  }
}

TEST(TorchOptimizer, MixedPrecisionWithMasterWeights) {
  auto net = make_net(::torch::kBFloat16);
  auto options = rmsprop::torch::RMSpropOptions(1e-2);
  options.set("master_weights", "true");
  rmsprop::torch::RMSprop opt(net->parameters(), options);
  const Batch b = batch(0, ::torch::kBFloat16);
  const double first = loss(*net, b).item<double>();
  for (int step = 0; step < 50; ++step) {
    opt.zero_grad();
    loss(*net, b).backward();
    opt.step();
  }
  EXPECT_LT(loss(*net, b).item<double>(), 0.8 * first);
  auto& state = static_cast<rmsprop::torch::RMSpropParamState&>(
      *opt.state().at(rmsprop::torch::state_key(net->a->weight)));
  EXPECT_EQ(state.master().scalar_type(), ::torch::kFloat);
  EXPECT_TRUE(::torch::equal(state.master().to(::torch::kBFloat16), net->a->weight));
}

// Strided parameters (NOTE: [strided parameters]) and gradients, and complex parameters as
// their real view, step as torch::optim::RMSprop steps them.
TEST(TorchOptimizer, StridedAndComplexParametersStepAsTorchSteps) {
  ::torch::manual_seed(3);
  const auto options = rmsprop::torch::RMSpropOptions(1e-2).momentum(0.9).centered(true);
  const auto theirs_options = ::torch::optim::RMSpropOptions(1e-2).momentum(0.9).centered(true);
  auto base = ::torch::randn({5, 4}, ::torch::kDouble);
  auto w = base.t();  // a transpose: strided
  auto v = base.t().contiguous();
  auto z = ::torch::randn({6}, ::torch::kComplexDouble);
  auto zr = ::torch::view_as_real(z).clone();
  ASSERT_FALSE(w.is_contiguous());
  rmsprop::torch::RMSprop ours({w, z}, options);
  ::torch::optim::RMSprop theirs({v, zr}, theirs_options);
  for (int s = 0; s < 5; ++s) {
    auto g = ::torch::randn({5, 4}, ::torch::kDouble);
    auto gz = ::torch::randn({6}, ::torch::kComplexDouble);
    w.mutable_grad() = g.t();  // strided too
    v.mutable_grad() = g.t().contiguous();
    z.mutable_grad() = gz;
    zr.mutable_grad() = ::torch::view_as_real(gz).clone();
    ours.step();
    theirs.step();
  }
  EXPECT_LE((w - v).abs().max().item<double>(), 1e-12);
  EXPECT_LE((::torch::view_as_real(z) - zr).abs().max().item<double>(), 1e-12);
  auto& state = static_cast<rmsprop::torch::RMSpropParamState&>(
      *ours.state().at(rmsprop::torch::state_key(z)));
  EXPECT_EQ(state.square_avg().scalar_type(), ::torch::kComplexDouble);  // as torch keeps it
  EXPECT_EQ(state.square_avg().sizes(), z.sizes());
}

TEST(TorchOptimizer, RefusesBadTensorsByName) {
  auto i = ::torch::zeros({3}, ::torch::kInt);
  i.mutable_grad() = ::torch::ones({3}, ::torch::kInt);
  rmsprop::torch::RMSprop ints({i});
  EXPECT_NE(error_of([&] { ints.step(); }).find("dtype Int"), std::string::npos);

  auto p = ::torch::zeros({3});
  p.mutable_grad() = ::torch::ones({3}, ::torch::kDouble);
  rmsprop::torch::RMSprop mixed({p});
  EXPECT_NE(error_of([&] {
              mixed.step();
            }).find("its gradient is 3 float64 on cpu, expected 3 float32 on cpu"),
            std::string::npos);

  auto s = ::torch::zeros({3});
  s.mutable_grad() = ::torch::ones({3}).to_sparse();
  rmsprop::torch::RMSprop sparse({s});
  EXPECT_NE(error_of([&] { sparse.step(); }).find("sparse gradient"), std::string::npos);

  EXPECT_NE(error_of([] {
              rmsprop::torch::RMSprop({::torch::zeros({1})}, rmsprop::torch::RMSpropOptions(-1));
            }).find("lr"),
            std::string::npos);
  rmsprop::torch::RMSpropOptions o;
  EXPECT_NE(error_of([&] { o.set("centred", "true"); }).find("centred"), std::string::npos);
}

TEST(TorchOptimizer, NonFinitePoliciesChangeNothing) {
  auto a = ::torch::ones({5}), b = ::torch::ones({5});
  a.mutable_grad() = ::torch::ones({5});
  b.mutable_grad() = ::torch::ones({5});
  b.mutable_grad()[3] = NAN;
  rmsprop::torch::RMSprop error_opt({a, b});
  const std::string message = error_of([&] { error_opt.step(); });
  EXPECT_NE(message.find("group 0, parameter 1 at element 3: nan"), std::string::npos) << message;
  EXPECT_TRUE(::torch::equal(a, ::torch::ones({5})));
  EXPECT_TRUE(error_opt.state().empty() ||
              ::torch::equal(static_cast<rmsprop::torch::RMSpropParamState&>(
                                 *error_opt.state().begin()->second)
                                 .square_avg(),
                             ::torch::zeros({5})));

  auto options = rmsprop::torch::RMSpropOptions();
  options.set("non_finite", "skip");
  rmsprop::torch::RMSprop skip_opt({a, b}, options);
  skip_opt.step();
  EXPECT_FALSE(skip_opt.last_step_applied());
  EXPECT_TRUE(::torch::equal(a, ::torch::ones({5})));
  b.mutable_grad()[3] = 1.0;
  skip_opt.step();
  EXPECT_TRUE(skip_opt.last_step_applied());
  EXPECT_FALSE(::torch::equal(a, ::torch::ones({5})));
  EXPECT_EQ(static_cast<rmsprop::torch::RMSpropParamState&>(
                *skip_opt.state().at(rmsprop::torch::state_key(a)))
                .step(),
            1);
}

}  // namespace

namespace {

// The drifts the step planner removed (see NOTE: [step planner]): the C++ optimizer and the
// libtorch optimizer refuse the same combinations with the same words, before anything
// changes, and round bfloat16 stochastically with the same seeds.
TEST(StepPlanner, FrontEndsRefuseTheSamePrecisionsBeforeAnythingChanges) {
  struct Case {
    c10::ScalarType dtype;
    const char* option;
    const char* words;
  } cases[] = {
      {::torch::kDouble, "state_dtype=bfloat16", "float64 parameters keep float64 state"},
      {::torch::kHalf, "stochastic_rounding=true", "stochastic_rounding is for bfloat16"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.option);
    const std::string text = c.option;
    const auto eq = text.find('=');
    rmsprop::Options core;
    core.set(text.substr(0, eq), text.substr(eq + 1));
    // C++: refused when the group is made
    std::vector<float> f(3);
    std::vector<double> d(3), dg(3);
    std::vector<rmsprop::float16> h(3), hg(3);
    const rmsprop::Param param =
        c.dtype == ::torch::kDouble ? rmsprop::Param::of(d, dg) : rmsprop::Param::of(h, hg);
    const std::string cpp = error_of([&] { rmsprop::Optimizer({param}, core); });
    EXPECT_NE(cpp.find(c.words), std::string::npos) << cpp;
    // libtorch: refused at the first step, nothing stepped (a good parameter first)
    auto good = ::torch::ones({4}), bad = ::torch::ones({3}, c.dtype);
    good.mutable_grad() = ::torch::ones({4});
    bad.mutable_grad() = ::torch::ones({3}, c.dtype);
    rmsprop::torch::RMSprop opt(
        std::vector<::torch::optim::OptimizerParamGroup>{
            ::torch::optim::OptimizerParamGroup({good}),
            ::torch::optim::OptimizerParamGroup(
                {bad}, std::make_unique<rmsprop::torch::RMSpropOptions>(core))},
        rmsprop::torch::RMSpropOptions(1e-2));
    const std::string torch_error = error_of([&] { opt.step(); });
    EXPECT_NE(torch_error.find("group 1, parameter 0: " + std::string(c.words)), std::string::npos)
        << torch_error;
    EXPECT_TRUE(opt.state().empty());
    EXPECT_TRUE(::torch::equal(good, ::torch::ones({4})));
  }
}

TEST(StepPlanner, Bfloat16StochasticRoundingIsBitwiseTheSameFromCppAndLibtorch) {
  rmsprop::Options o;
  o.lr = 1e-2, o.momentum = 0.9, o.stochastic_rounding = true, o.master_weights = false;
  const std::int64_t n = 3000;
  auto p = ::torch::randn({n}).to(::torch::kBFloat16);
  std::vector<rmsprop::bfloat16> w(n), g(n);
  std::memcpy(w.data(), p.data_ptr(), n * sizeof(rmsprop::bfloat16));
  rmsprop::Optimizer cpp({rmsprop::Param::of(w, g)}, o);
  rmsprop::torch::RMSprop lib({p}, rmsprop::torch::RMSpropOptions(o));
  for (int step = 0; step < 5; ++step) {
    auto grad = ::torch::randn({n}).to(::torch::kBFloat16);
    std::memcpy(g.data(), grad.data_ptr(), n * sizeof(rmsprop::bfloat16));
    p.mutable_grad() = grad;
    cpp.step();
    lib.step();
  }
  EXPECT_EQ(std::memcmp(w.data(), p.data_ptr(), n * sizeof(rmsprop::bfloat16)), 0);
}

// 8-bit state (NOTE: [8-bit state]): a uint8 tensor of codes and block scales per buffer,
// stepped by the same kernels as the core optimizer (bitwise), saved and loaded through
// libtorch's archive, converted to float32 state and back when state_dtype changes; tensors
// under state8_min_size keep float32 state.
TEST(TorchOptimizer, EightBitStateIsTheCoreOptimizersAndSurvivesArchivesAndConversion) {
  rmsprop::Options o;
  o.lr = 1e-2, o.momentum = 0.9, o.centered = true, o.state_dtype = rmsprop::StateDType::int8;
  const std::int64_t big = 5000, small = 100;
  auto p = ::torch::randn({big}), q = ::torch::randn({small});
  std::vector<float> w(big), v(small), gw(big), gv(small);
  std::memcpy(w.data(), p.data_ptr(), big * 4), std::memcpy(v.data(), q.data_ptr(), small * 4);
  rmsprop::Optimizer cpp({rmsprop::Param::of(w, gw), rmsprop::Param::of(v, gv)}, o);
  rmsprop::torch::RMSprop first({p, q}, rmsprop::torch::RMSpropOptions(o));
  rmsprop::torch::RMSprop* lib = &first;
  auto step_both = [&](int s) {
    auto a = ::torch::randn({big}) * (1 + s), b = ::torch::randn({small});
    std::memcpy(gw.data(), a.data_ptr(), big * 4), std::memcpy(gv.data(), b.data_ptr(), small * 4);
    p.mutable_grad() = a, q.mutable_grad() = b;
    cpp.step();
    lib->step();
  };
  for (int s = 0; s < 3; ++s) step_both(s);
  auto& state = static_cast<rmsprop::torch::RMSpropParamState&>(
      *lib->state().at(rmsprop::torch::state_key(p)));
  EXPECT_EQ(state.square_avg().scalar_type(), ::torch::kByte);
  EXPECT_EQ(state.square_avg().numel(), std::int64_t(rmsprop::state8_bytes(big)));
  EXPECT_EQ(state.momentum_buffer().numel(), std::int64_t(rmsprop::state8_bytes(big)));
  auto& small_state = static_cast<rmsprop::torch::RMSpropParamState&>(
      *lib->state().at(rmsprop::torch::state_key(q)));
  EXPECT_EQ(small_state.square_avg().scalar_type(), ::torch::kFloat);  // under state8_min_size
  EXPECT_EQ(std::memcmp(w.data(), p.data_ptr(), big * 4), 0);
  EXPECT_EQ(std::memcmp(v.data(), q.data_ptr(), small * 4), 0);

  // through an archive: the loaded optimizer continues bitwise
  rmsprop::torch::RMSprop loaded({p, q});
  round_trip(first, loaded);
  lib = &loaded;
  for (int s = 3; s < 5; ++s) step_both(s);
  EXPECT_EQ(std::memcmp(w.data(), p.data_ptr(), big * 4), 0);

  // to float32 state and back, as the core optimizer converts
  rmsprop::Options full = o;
  full.state_dtype = rmsprop::StateDType::float32;
  for (const rmsprop::Options& next : {full, o}) {
    static_cast<rmsprop::torch::RMSpropOptions&>(lib->param_groups()[0].options()).core() = next;
    cpp.set_options(0, next);
    step_both(9);
    auto& now = static_cast<rmsprop::torch::RMSpropParamState&>(
        *lib->state().at(rmsprop::torch::state_key(p)));
    EXPECT_EQ(now.grad_avg().scalar_type(),
              next.state_dtype == rmsprop::StateDType::int8 ? ::torch::kByte : ::torch::kFloat);
    EXPECT_EQ(std::memcmp(w.data(), p.data_ptr(), big * 4), 0);
  }
}

// The state through a core Optimizer's checkpoint bytes and back (how the CLI's sharded state
// is saved and resumed): the optimizer continues the never-stopped run to the bit, for float32
// state with every buffer, 8-bit state and bfloat16 parameters with master weights.
TEST(TorchOptimizer, StateThroughTheCoreOptimizerContinuesBitwise) {
  struct Case {
    c10::ScalarType dtype;
    rmsprop::Options options;
  };
  rmsprop::Options full = rmsprop::Options::from_flavor(rmsprop::Flavor::torch);
  full.lr = 1e-2, full.momentum = 0.9, full.centered = true;
  rmsprop::Options eight = full;
  eight.state_dtype = rmsprop::StateDType::int8, eight.state8_min_size = 16;
  rmsprop::Options half = rmsprop::Options::from_flavor(rmsprop::Flavor::keras);
  half.lr = 1e-2, half.master_weights = true;
  for (const Case& c : {Case{::torch::kFloat, full}, Case{::torch::kFloat, eight},
                        Case{::torch::kBFloat16, half}}) {
    const rmsprop::torch::RMSpropOptions options(c.options);
    auto straight = make_net(c.dtype), net = make_net(c.dtype);
    rmsprop::torch::RMSprop a(straight->parameters(), options), b(net->parameters(), options);
    train(*straight, a, 0, 20, c.dtype);
    train(*net, b, 0, 10, c.dtype);
    const std::vector<std::byte> bytes = rmsprop::torch::core_optimizer_of(b).save_to_memory();

    rmsprop::torch::RMSprop resumed(net->parameters(), rmsprop::torch::RMSpropOptions(0.5));
    rmsprop::Optimizer core = rmsprop::torch::core_optimizer_of(resumed);
    core.load_from_memory(bytes);
    rmsprop::torch::set_state(resumed, core);
    EXPECT_EQ(
        static_cast<rmsprop::torch::RMSpropOptions&>(resumed.param_groups()[0].options()).core(),
        c.options);  // the saved options win, as in a load
    train(*net, resumed, 10, 20, c.dtype);
    auto pa = straight->parameters(), pb = net->parameters();
    for (std::size_t i = 0; i < pa.size(); ++i) {
      EXPECT_TRUE(::torch::equal(pa[i], pb[i])) << "parameter " << i << " of " << c.dtype;
    }
  }
}

TEST(TorchOptimizer, SetStateRefusesAnotherLayoutAndChangesNothing) {
  auto net = make_net(::torch::kFloat);
  rmsprop::torch::RMSprop opt(net->parameters(), rmsprop::torch::RMSpropOptions(1e-2));
  train(*net, opt, 0, 2, ::torch::kFloat);
  const auto before = static_cast<rmsprop::torch::RMSpropParamState&>(
                          *opt.state().at(rmsprop::torch::state_key(net->parameters()[0])))
                          .square_avg()
                          .clone();
  std::vector<float> w(5), g(5);
  rmsprop::Optimizer one_param({rmsprop::Param::of(w, g)}, rmsprop::Options{});
  EXPECT_NE(error_of([&] {
              rmsprop::torch::set_state(opt, one_param);
            }).find("group 0 has 1 parameters in the core optimizer; this optimizer's has 4"),
            std::string::npos);
  auto params = net->parameters();
  std::vector<std::vector<float>> ws, gs;
  std::vector<rmsprop::Param> core_params;
  for (std::size_t i = 0; i < params.size(); ++i) {
    ws.emplace_back(std::size_t(params[i].numel()) + (i == 2)), gs.emplace_back(ws.back().size());
    core_params.push_back(rmsprop::Param::of(ws.back(), gs.back()));
  }
  rmsprop::Optimizer bigger(core_params, rmsprop::Options{});
  EXPECT_NE(
      error_of([&] {
        rmsprop::torch::set_state(opt, bigger);
      }).find("set_state: group 0, parameter 2: the core optimizer's parameter has 25 values"),
      std::string::npos);
  EXPECT_EQ(opt.state().size(), params.size());
  EXPECT_TRUE(::torch::equal(static_cast<rmsprop::torch::RMSpropParamState&>(
                                 *opt.state().at(rmsprop::torch::state_key(params[0])))
                                 .square_avg(),
                             before));
}

// The recorded run of tests/recorded/bf16_stochastic_rounding.txt (its header says how the
// values are made): the C++ and libtorch optimizers give these bits here, and the Python
// optimizer and rmsprop.step give them in python/tests, so all four front ends agree.
std::uint64_t fnv1a(const void* data, std::size_t bytes) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i < bytes; ++i) {
    h = (h ^ static_cast<const unsigned char*>(data)[i]) * 0x100000001b3ull;
  }
  return h;
}

TEST(StepPlanner, Bfloat16StochasticRoundingGivesTheRecordedBits) {
  rmsprop::Options o;
  o.lr = 1e-2, o.momentum = 0.9, o.stochastic_rounding = true, o.master_weights = false;
  const std::size_t sizes[] = {3000, 77};
  std::vector<std::vector<rmsprop::bfloat16>> w(2), g(2);
  std::vector<::torch::Tensor> t(2);
  for (std::size_t i = 0; i < 2; ++i) {
    for (std::size_t j = 0; j < sizes[i]; ++j) {
      w[i].push_back(rmsprop::to_bfloat16(float(int((j * 37 + i * 11) % 257) - 128) / 64.0f));
    }
    g[i].resize(sizes[i]);
    t[i] = ::torch::empty({std::int64_t(sizes[i])}, ::torch::kBFloat16);
    std::memcpy(t[i].data_ptr(), w[i].data(), sizes[i] * 2);
  }
  rmsprop::Optimizer cpp({rmsprop::Param::of(w[0], g[0]), rmsprop::Param::of(w[1], g[1])}, o);
  rmsprop::torch::RMSprop lib({t[0], t[1]}, rmsprop::torch::RMSpropOptions(o));
  for (std::size_t s = 1; s <= 5; ++s) {
    for (std::size_t i = 0; i < 2; ++i) {
      for (std::size_t j = 0; j < sizes[i]; ++j) {
        g[i][j] = rmsprop::to_bfloat16(float(int((j * 13 + i * 7 + s * 29) % 101) - 50) / 32.0f);
      }
      auto grad = ::torch::empty({std::int64_t(sizes[i])}, ::torch::kBFloat16);
      std::memcpy(grad.data_ptr(), g[i].data(), sizes[i] * 2);
      t[i].mutable_grad() = grad;
    }
    cpp.step();
    lib.step();
  }
  std::ifstream recorded(std::string(RMSPROP_RECORDED_DIR) + "/bf16_stochastic_rounding.txt");
  ASSERT_TRUE(recorded) << "tests/recorded/bf16_stochastic_rounding.txt is missing";
  std::string line;
  std::vector<std::string> hashes;
  while (std::getline(recorded, line)) {
    if (!line.empty() && line[0] != '#') hashes.push_back(line);
  }
  ASSERT_EQ(hashes.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    char text[17];
    std::snprintf(text, sizeof text, "%016llx",
                  static_cast<unsigned long long>(fnv1a(w[i].data(), sizes[i] * 2)));
    EXPECT_EQ(hashes[i], text) << "parameter " << i << " (C++ optimizer)";
    EXPECT_EQ(std::memcmp(w[i].data(), t[i].data_ptr(), sizes[i] * 2), 0)
        << "parameter " << i << ": libtorch differs from C++";
  }
}

}  // namespace
