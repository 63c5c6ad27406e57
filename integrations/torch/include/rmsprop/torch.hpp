// rmsprop::torch::RMSprop: a torch::optim::Optimizer (libtorch) that runs the fused kernels on
// the tensors' own memory. Every option and flavor of the core; flavor "torch" follows
// torch::optim::RMSprop step for step, and the two load each other's saved state.
//
//   rmsprop::torch::RMSprop opt(model->parameters(), rmsprop::torch::RMSpropOptions(1e-3)
//                                                       .alpha(0.9).momentum(0.9));
//   auto keras = rmsprop::torch::RMSpropOptions::flavor(rmsprop::Flavor::keras).lr(1e-3);
//   keras.set("eps_in_sqrt", "true");  // any core option by its name
#pragma once

#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>

#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "rmsprop/kernel.hpp"
#include "rmsprop/optimizer.hpp"
#include "rmsprop/options.hpp"

namespace rmsprop::torch {

// The key of a parameter's entry in Optimizer::state(): libtorch 1.x keys it by the text of
// its TensorImpl's address, 2.x by the address itself.
using StateKey =
    std::decay_t<decltype(std::declval<::torch::optim::Optimizer&>().state())>::key_type;
StateKey state_key(const ::torch::Tensor& param);

// A group's options: the core's rmsprop::Options with libtorch-style chained accessors.
class RMSpropOptions : public ::torch::optim::OptimizerCloneableOptions<RMSpropOptions> {
 public:
  RMSpropOptions(double lr = 1e-2);  // flavor "torch" (torch::optim::RMSprop's defaults)
  explicit RMSpropOptions(const Options& options);
  static RMSpropOptions flavor(Flavor flavor) {
    return RMSpropOptions(Options::from_flavor(flavor));
  }

  // A getter and a chained setter for every core option (option_list.hpp): .lr(1e-3),
  // .alpha(0.9), .centered(true), .non_finite(NonFinitePolicy::skip), ...
#define RMSPROP_TORCH_OPTION(type, name, init, range, keras_name, help) \
  type name() const {                                                   \
    return options_.name;                                               \
  }                                                                     \
  RMSpropOptions& name(type value) {                                    \
    options_.name = value;                                              \
    return *this;                                                       \
  }
  RMSPROP_OPTION_LIST(RMSPROP_TORCH_OPTION)
#undef RMSPROP_TORCH_OPTION

  // Any option of the core by its name, as Options::set parses it; throws InvalidOption.
  RMSpropOptions& set(std::string_view name, std::string_view value);
  const Options& core() const {
    return options_;
  }
  Options& core() {
    return options_;
  }

  double get_lr() const override {
    return options_.lr;
  }
  void set_lr(const double lr) override {
    options_.lr = lr;
  }
  // Writes torch::optim::RMSpropOptions' keys (so libtorch's RMSprop can load ours) and every
  // core option; reads either.
  void serialize(::torch::serialize::InputArchive& archive) override;
  void serialize(::torch::serialize::OutputArchive& archive) const override;

 private:
  Options options_;
};

// A parameter's state, under torch::optim::RMSpropParamState's names.
struct RMSpropParamState : public ::torch::optim::OptimizerCloneableParamState<RMSpropParamState> {
  TORCH_ARG(int64_t, step) = 0;
  TORCH_ARG(::torch::Tensor, square_avg);
  TORCH_ARG(::torch::Tensor, momentum_buffer) = {};
  TORCH_ARG(::torch::Tensor, grad_avg) = {};
  TORCH_ARG(::torch::Tensor, master) = {};  // float32 copy of a 16-bit parameter

 public:
  void serialize(::torch::serialize::InputArchive& archive) override;
  void serialize(::torch::serialize::OutputArchive& archive) const override;
};

class RMSprop : public ::torch::optim::Optimizer {
 public:
  explicit RMSprop(std::vector<::torch::optim::OptimizerParamGroup> param_groups,
                   RMSpropOptions defaults = {});
  explicit RMSprop(std::vector<::torch::Tensor> params, RMSpropOptions defaults = {})
      : RMSprop({::torch::optim::OptimizerParamGroup(std::move(params))}, std::move(defaults)) {}

  // One fused kernel call per group (and storage precision). Parameters without a gradient
  // are skipped. Everything is checked before anything changes: CPU, strided, contiguous
  // parameters of float32/float64/bfloat16/float16 with a gradient of the same dtype and size,
  // and the group's non-finite policy (error: throws NonFiniteError; skip: returns without
  // stepping, last_step_applied() is false).
  ::torch::Tensor step(LossClosure closure = nullptr) override;
  // A group with options of its own keeps them as given (validated first; libtorch's
  // Optimizer::add_param_group, which this hides, replaces them with the defaults in recent
  // versions). Call it on RMSprop, not through an Optimizer reference.
  void add_param_group(const ::torch::optim::OptimizerParamGroup& group);
  void save(::torch::serialize::OutputArchive& archive) const override;
  void load(::torch::serialize::InputArchive& archive) override;

  bool last_step_applied() const { return last_step_applied_; }
  void set_kernel_config(const KernelConfig& config) { kernel_ = config; }

 private:
  KernelConfig kernel_;
  bool last_step_applied_ = true;
};

// The state of `opt` in a core rmsprop::Optimizer over the same CPU tensors (contiguous; no
// gradients: it is for state, not steps), group by group with the groups' options: for code
// that keeps the state elsewhere — rmsprop::mpi::ShardedOptimizer reads and writes a core
// Optimizer's checkpoint (save_to_memory / load_from_memory) — and saves through libtorch.
// set_state() is the way back: the state and options of `core`, an optimizer over tensors of
// the same groups, counts, sizes and dtypes as opt's, replace opt's (checked first: on an
// error opt is unchanged). Either continues the other's trajectory to the bit.
Optimizer core_optimizer_of(const RMSprop& opt);
void set_state(RMSprop& opt, const Optimizer& core);

}  // namespace rmsprop::torch
