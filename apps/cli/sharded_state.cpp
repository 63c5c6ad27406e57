#include "sharded_state.hpp"

#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "rmsprop/error.hpp"
#include "rmsprop/torch.hpp"

namespace rmsprop::cli {

namespace {

// --shard-state: rmsprop::mpi::ShardedOptimizer over the model's parameters. Its state moves
// to and from the libtorch optimizer the checkpoint holds through a core Optimizer's bytes.
class MpiShardedState final : public ShardedState {
 public:
  MpiShardedState(::torch::optim::Optimizer& whole, const mpi::Communicator& comm, int threads)
      : whole_(whole) {
    std::vector<ParamGroup> groups;
    std::int64_t total = 0;
    for (const auto& group : whole.param_groups()) {
      for (const auto& p : group.params()) total += p.numel();
    }
    // The gradients in one buffer of ours, copied in before each step: libtorch may reallocate
    // or drop a parameter's gradient between steps (zero_grad); the sharded optimizer keeps
    // the pointers it was given.
    grads_ = ::torch::zeros({total}, ::torch::kFloat);
    const Optimizer layout = rmsprop::torch::core_optimizer_of(as_ours(whole));
    std::int64_t at = 0;
    for (std::size_t g = 0; g < layout.num_groups(); ++g) {
      groups.push_back({{}, layout.options(g)});
      for (std::size_t i = 0; i < layout.num_params(g); ++i) {
        Param p = layout.param(g, i);
        if (p.dtype != DType::f32 || p.complex) {
          throw InvalidOption("--shard-state: float32 parameters only (group " + std::to_string(g) +
                              ", parameter " + std::to_string(i) + " is " +
                              std::string(to_string(p.dtype)) + ")");
        }
        p.grad = grads_.data_ptr<float>() + at;
        at += std::int64_t(p.size);
        groups.back().params.push_back(p);
      }
    }
    sharded_.emplace(std::move(groups), comm);
    KernelConfig kernel;
    kernel.threads = threads;
    sharded_->set_kernel_config(kernel);
  }

  void step() override {
    std::int64_t at = 0;
    for (const auto& group : whole_.param_groups()) {
      for (const auto& p : group.params()) {
        auto slice = grads_.narrow(0, at, p.numel());
        if (p.grad().defined()) {
          slice.copy_(p.grad().reshape({-1}));
        } else {
          slice.zero_();
        }
        at += p.numel();
      }
    }
    sharded_->step();
  }

  void gather_into(::torch::optim::Optimizer& whole) override {
    const std::vector<std::byte> bytes = sharded_->save_to_memory();  // rank 0's, else empty
    if (bytes.empty()) return;
    Optimizer core = rmsprop::torch::core_optimizer_of(as_ours(whole));
    core.load_from_memory(bytes, "the sharded state");
    rmsprop::torch::set_state(as_ours(whole), core);
  }

  void scatter_from(::torch::optim::Optimizer& whole) override {
    sharded_->load_from_memory(rmsprop::torch::core_optimizer_of(as_ours(whole)).save_to_memory(),
                               "the resumed optimizer state");
    whole.state().clear();
  }

 private:
  static rmsprop::torch::RMSprop& as_ours(::torch::optim::Optimizer& opt) {
    auto* ours = dynamic_cast<rmsprop::torch::RMSprop*>(&opt);
    if (!ours) throw InvalidOption("--shard-state: needs --backend rmsprop");
    return *ours;
  }

  ::torch::optim::Optimizer& whole_;
  ::torch::Tensor grads_;
  std::optional<mpi::ShardedOptimizer> sharded_;
};

}  // namespace

std::unique_ptr<ShardedState> shard_state(::torch::optim::Optimizer& whole,
                                          const mpi::Communicator& comm, int threads) {
  return std::make_unique<MpiShardedState>(whole, comm, threads);
}

}  // namespace rmsprop::cli
