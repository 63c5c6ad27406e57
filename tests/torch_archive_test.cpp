// rmsprop::torch::RMSprop's archives across libtorch versions, and its parameter groups'
// options. tests/recorded/libtorch-<version>-<who>.pt are archives saved after 3 steps of the
// run below by each tested libtorch (1.x keys parameters by hexadecimal addresses, 2.x by
// decimal ones); every one must load in every version and go on as if never stopped.
//
// Re-record (writes this libtorch's two files):
//   RMSPROP_RECORD_ARCHIVES=1 build/tests/rmsprop_torch_tests --gtest_filter='TorchArchive.*'
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "rmsprop/error.hpp"
#include "rmsprop/torch.hpp"

namespace {

namespace fs = std::filesystem;

// Three parameters of different sizes and values, so a state given to the wrong one shows.
std::vector<::torch::Tensor> make_params() {
  std::vector<::torch::Tensor> params;
  for (std::int64_t k = 0; k < 3; ++k) {
    auto p = ::torch::arange(5 + 4 * k, ::torch::kDouble).mul(0.25).sub(0.5 + k).reshape({-1});
    params.push_back(p.set_requires_grad(true));
  }
  return params;
}

// A gradient from the parameter by a polynomial: the same on every machine to rounding.
void set_grads(std::vector<::torch::Tensor>& params, int step) {
  ::torch::NoGradGuard no_grad;
  for (std::size_t k = 0; k < params.size(); ++k) {
    const auto& p = params[k];
    p.mutable_grad() = p * p * 0.5 - p * (0.3 + 0.1 * double(k)) + 0.05 * double(step);
  }
}

void run(::torch::optim::Optimizer& opt, std::vector<::torch::Tensor>& params, int from, int to) {
  for (int step = from; step < to; ++step) {
    set_grads(params, step);
    opt.step();
  }
}

// Ours: two groups with options of their own (centered + momentum; tf1 flavor with Nesterov).
std::unique_ptr<rmsprop::torch::RMSprop> make_ours(std::vector<::torch::Tensor>& params) {
  std::vector<::torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<::torch::Tensor>{params[0], params[1]},
                      std::make_unique<rmsprop::torch::RMSpropOptions>(
                          rmsprop::torch::RMSpropOptions(1e-2).momentum(0.9).centered(true)));
  auto tf1 = rmsprop::torch::RMSpropOptions::flavor(rmsprop::Flavor::tf1).lr(3e-3).momentum(0.5);
  tf1.set("nesterov", "true");
  groups.emplace_back(std::vector<::torch::Tensor>{params[2]},
                      std::make_unique<rmsprop::torch::RMSpropOptions>(tf1));
  return std::make_unique<rmsprop::torch::RMSprop>(std::move(groups),
                                                   rmsprop::torch::RMSpropOptions(0.5));
}

// Ours as torch::optim::RMSprop with kTheirOptions, or the two groups above; defaults differ
// from what is saved, so that a load must restore the groups' options.
std::unique_ptr<rmsprop::torch::RMSprop> make(bool as_torch, std::vector<::torch::Tensor>& params) {
  if (!as_torch) return make_ours(params);
  std::vector<::torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(params,
                      std::make_unique<rmsprop::torch::RMSpropOptions>(
                          rmsprop::torch::RMSpropOptions(1e-2).momentum(0.9).centered(true)));
  return std::make_unique<rmsprop::torch::RMSprop>(std::move(groups),
                                                   rmsprop::torch::RMSpropOptions(0.5));
}

const auto kTheirOptions = ::torch::optim::RMSpropOptions(1e-2).momentum(0.9).centered(true);

// ‖a − b‖ / ‖b‖ over the list.
double relative_distance(const std::vector<::torch::Tensor>& a,
                         const std::vector<::torch::Tensor>& b) {
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - b[i]).pow(2).sum().item<double>();
    norm += b[i].pow(2).sum().item<double>();
  }
  return std::sqrt(diff / norm);
}

std::vector<::torch::Tensor> detached(const std::vector<::torch::Tensor>& params) {
  std::vector<::torch::Tensor> out;
  for (const auto& p : params) out.push_back(p.detach().clone());
  return out;
}

std::string this_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR);
}

std::vector<fs::path> recorded_archives(const std::string& who) {
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator(RMSPROP_RECORDED_DIR)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("libtorch-", 0) == 0 && name.size() > who.size() + 3 &&
        name.compare(name.size() - who.size() - 3, std::string::npos, who + ".pt") == 0) {
      found.push_back(entry.path());
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

// The run stopped after 3 steps and saved, as each libtorch writes it (RMSPROP_RECORD_ARCHIVES).
TEST(TorchArchive, RecordWhenAsked) {
  if (std::getenv("RMSPROP_RECORD_ARCHIVES") == nullptr) GTEST_SKIP() << "not recording";
  const std::string stem = std::string(RMSPROP_RECORDED_DIR) + "/libtorch-" + this_version();
  auto params = make_params();
  auto ours = make_ours(params);
  run(*ours, params, 0, 3);
  ::torch::save(*ours, stem + "-ours.pt");
  auto theirs_params = make_params();
  ::torch::optim::RMSprop theirs(theirs_params, kTheirOptions);
  run(theirs, theirs_params, 0, 3);
  ::torch::save(theirs, stem + "-torch.pt");
}

// Both tested versions are recorded: 1.13 (Debian 12) and 2.6 (Debian 13).
TEST(TorchArchive, EveryTestedVersionIsRecorded) {
  for (const std::string who : {"ours", "torch"}) {
    std::vector<std::string> names;
    for (const auto& p : recorded_archives(who)) names.push_back(p.filename().string());
    for (const std::string version : {"1.13", "2.6"}) {
      const std::string name = "libtorch-" + version + "-" + who + ".pt";
      EXPECT_TRUE(std::find(names.begin(), names.end(), name) != names.end())
          << "tests/recorded/" << name << " is missing";
    }
  }
}

// Saved state loaded into a fresh optimizer over this process's own 3-step parameters, then 3
// more steps: the loaded state equals this process's state after 3 steps and the end equals 6
// steps never stopped, to float64 rounding (the archive may come from another machine, whose
// SIMD target rounds differently in the last place).
void expect_resumes(const fs::path& archive, bool from_torch) {
  SCOPED_TRACE(archive.filename().string());
  auto straight = make_params();
  auto straight_opt = make(from_torch, straight);
  run(*straight_opt, straight, 0, 3);
  const auto at_3 = detached(straight);
  std::vector<::torch::Tensor> state_at_3;
  for (const auto& p : straight) {
    const auto& s = static_cast<const rmsprop::torch::RMSpropParamState&>(
        *straight_opt->state().at(rmsprop::torch::state_key(p)));
    state_at_3.push_back(s.square_avg().clone());
  }
  run(*straight_opt, straight, 3, 6);

  std::vector<::torch::Tensor> params;
  for (const auto& p : at_3) params.push_back(p.clone().set_requires_grad(true));
  // a fresh optimizer; its group options differ from the saved ones until it loads
  auto resumed = make(from_torch, params);
  for (auto& group : resumed->param_groups()) group.options().set_lr(0.5);
  ::torch::load(*resumed, archive.string());
  std::vector<::torch::Tensor> loaded;
  for (const auto& p : params) {
    const auto& s = static_cast<const rmsprop::torch::RMSpropParamState&>(
        *resumed->state().at(rmsprop::torch::state_key(p)));
    EXPECT_EQ(s.step(), 3);
    loaded.push_back(s.square_avg());
  }
  EXPECT_LT(relative_distance(loaded, state_at_3), 1e-12);
  run(*resumed, params, 3, 6);
  EXPECT_LT(relative_distance(detached(params), detached(straight)), 1e-12);
}

TEST(TorchArchive, OursFromEveryTestedVersionResume) {
  const auto archives = recorded_archives("ours");
  ASSERT_FALSE(archives.empty());
  for (const auto& a : archives) expect_resumes(a, false);
}

TEST(TorchArchive, TorchsFromEveryTestedVersionResumeInOurs) {
  const auto archives = recorded_archives("torch");
  ASSERT_FALSE(archives.empty());
  for (const auto& a : archives) expect_resumes(a, true);
}

// A refused archive names what is wrong and leaves the optimizer as it was.
TEST(TorchArchive, AMismatchedArchiveIsRefusedByNameAndChangesNothing) {
  auto params = make_params();
  auto opt = make_ours(params);
  run(*opt, params, 0, 2);
  std::stringstream saved;
  ::torch::save(*opt, saved);

  auto expect_refused = [](rmsprop::torch::RMSprop& into, std::stringstream& archive,
                           const std::string& names) {
    const auto lr = into.param_groups()[0].options().get_lr();
    const auto states = into.state().size();
    archive.seekg(0);
    try {
      ::torch::load(into, archive);
      ADD_FAILURE() << "loaded";
    } catch (const rmsprop::CheckpointError& e) {
      EXPECT_NE(std::string(e.what()).find(names), std::string::npos) << e.what();
    }
    EXPECT_EQ(into.param_groups()[0].options().get_lr(), lr);
    EXPECT_EQ(into.state().size(), states);
  };
  auto other = make_params();
  rmsprop::torch::RMSprop one_group(other, rmsprop::torch::RMSpropOptions(0.5));
  expect_refused(one_group, saved, "has 2 parameter groups; this optimizer has 1");

  // The same group count, a parameter of another size.
  std::vector<::torch::Tensor> resized{::torch::zeros({5}, ::torch::kDouble).requires_grad_(),
                                       ::torch::zeros({7}, ::torch::kDouble).requires_grad_(),
                                       ::torch::zeros({13}, ::torch::kDouble).requires_grad_()};
  auto into = make_ours(resized);
  run(*into, resized, 0, 1);
  expect_refused(*into, saved,
                 "group 0, parameter 1: square_avg has 9 elements; the parameter has 7");

  // A step count the library cannot hold (the state's own, set past the step's check).
  for (const std::int64_t bad : {std::int64_t(-5), std::numeric_limits<std::int64_t>::max()}) {
    auto source = make_ours(params);
    run(*source, params, 0, 1);
    auto& state = static_cast<rmsprop::torch::RMSpropParamState&>(
        *source->state().at(rmsprop::torch::state_key(params[0])));
    state.step(bad);
    std::stringstream archive;
    ::torch::save(*source, archive);
    auto target = make_ours(params);
    expect_refused(*target, archive,
                   "group 0, parameter 0 has " +
                       std::string(bad < 0 ? "a negative step count -5"
                                           : "a step count of 9223372036854775807, past the"));
  }
}

// Options no optimizer would hold, saved past their check (core() is mutable): refused by
// name as a CheckpointError, like every other damaged archive.
TEST(TorchArchive, SavedOptionsOutOfRangeAreRefusedByName) {
  auto params = make_params();
  auto source = make_ours(params);
  run(*source, params, 0, 1);
  static_cast<rmsprop::torch::RMSpropOptions&>(source->param_groups()[1].options()).core().alpha =
      -1;
  std::stringstream archive;
  ::torch::save(*source, archive);
  auto target = make_ours(params);
  const auto lr = target->param_groups()[0].options().get_lr();
  try {
    ::torch::load(*target, archive);
    ADD_FAILURE() << "loaded";
  } catch (const rmsprop::CheckpointError& e) {
    EXPECT_EQ(std::string(e.what()),
              "optimizer archive: invalid option alpha=-1: must be finite and >= 0");
  }
  EXPECT_EQ(target->param_groups()[0].options().get_lr(), lr);
  EXPECT_TRUE(target->state().empty());
}

// Options given with a group stay the group's (libtorch after 2.6 rebuilds them from the
// defaults in Optimizer::add_param_group for optimizers it does not know).
TEST(TorchArchive, AGroupsOwnOptionsAreKeptWhenAdded) {
  auto params = make_params();
  rmsprop::torch::RMSprop opt(std::vector<::torch::Tensor>{params[0]},
                              rmsprop::torch::RMSpropOptions(0.5));
  opt.add_param_group(::torch::optim::OptimizerParamGroup(
      {params[1]}, std::make_unique<rmsprop::torch::RMSpropOptions>(
                       rmsprop::torch::RMSpropOptions(1e-3).centered(true).alpha(0.9))));
  opt.add_param_group(::torch::optim::OptimizerParamGroup({params[2]}));
  const auto& g1 =
      static_cast<const rmsprop::torch::RMSpropOptions&>(opt.param_groups()[1].options());
  EXPECT_EQ(g1.lr(), 1e-3);
  EXPECT_EQ(g1.alpha(), 0.9);
  EXPECT_TRUE(g1.centered());
  EXPECT_EQ(opt.param_groups()[2].options().get_lr(), 0.5);

  auto bad = rmsprop::torch::RMSpropOptions(1e-3).alpha(-1.5);
  EXPECT_THROW(opt.add_param_group(::torch::optim::OptimizerParamGroup(
                   {::torch::zeros({2})}, std::make_unique<rmsprop::torch::RMSpropOptions>(bad))),
               rmsprop::InvalidOption);
  EXPECT_THROW(opt.add_param_group(::torch::optim::OptimizerParamGroup(
                   {::torch::zeros({2})},
                   std::make_unique<::torch::optim::SGDOptions>(::torch::optim::SGDOptions(0.1)))),
               rmsprop::InvalidOption);
  EXPECT_EQ(opt.param_groups().size(), 3u);
}

}  // namespace
