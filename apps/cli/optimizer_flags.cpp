#include "optimizer_flags.hpp"

#include <torch/optim/rmsprop.h>

#include <algorithm>

#include "rmsprop/error.hpp"
#include "rmsprop/torch.hpp"

namespace rmsprop::cli {
namespace {

// One line per core option for --help (docs/flavors.md has the formulas).
const std::map<std::string, std::string> kHelp = {
    {"algorithm", "rmsprop, adagrad, adam or sgd (the baselines share the rule)"},
    {"lr", "Learning rate (train default 1e-3)"},
    {"alpha", "Decay of the square average, ρ (train default 0.9)"},
    {"rho", "Alias of --alpha"},
    {"grad_avg_decay", "Decay of the gradient average (centered, Adam's beta1; default alpha)"},
    {"eps", "ε (train default 1e-8)"},
    {"eps_in_sqrt", "true: sqrt(v + ε); false: sqrt(v) + ε"},
    {"initial_accumulator_value", "Initial square average v₀"},
    {"momentum", "Momentum μ"},
    {"nesterov", "Nesterov momentum"},
    {"lr_in_momentum", "true: the buffer accumulates lr·update (TF1); false: lr applied after"},
    {"centered", "Divide by the standard deviation (Graves 2013)"},
    {"bias_correction", "Correct the averages' start-up bias (optax, Adam)"},
    {"weight_decay", "Weight decay λ"},
    {"decoupled_weight_decay", "true: θ -= lr·λ·θ (AdamW style); false: g += λ·θ"},
    {"weight_decay_uses_lr", "Decoupled only: false gives θ -= λ·θ"},
    {"maximize", "Ascend instead of descend"},
    {"non_finite", "On NaN/inf gradients: error, skip or propagate"},
    {"state_dtype", "float32 or bfloat16 optimizer state"},
    {"master_weights", "16-bit parameters: keep a float32 master copy"},
    {"stochastic_rounding", "bfloat16 parameters: round their stored image stochastically"},
};

}  // namespace

std::string flag_of(std::string name) {
  std::replace(name.begin(), name.end(), '_', '-');
  return "--" + name;
}

void OptimizerFlags::add_to(CLI::App& app) {
  std::string flavors;
  for (Flavor f : all_flavors())
    flavors += (flavors.empty() ? "" : ", ") + std::string(to_string(f));
  app.add_option(
         "--flavor", flavor,
         "Optimizer preset: " + flavors + " (default: keras with lr 1e-3, rho 0.9, eps 1e-8)")
      ->group("Optimizer");
  app.add_option("--backend", backend,
                 "rmsprop (ours, every option) or torch (torch::optim::RMSprop, to compare)")
      ->check(CLI::IsMember({"rmsprop", "torch"}))
      ->group("Optimizer");
  std::vector<std::string> names;
  for (const auto& [name, value] : Options{}.to_pairs()) names.push_back(name);
  names.insert(names.begin() + 2, "rho");
  names.insert(names.begin() + 3, "grad_avg_decay");
  for (const std::string& name : names) {
    const auto help_line = kHelp.find(name);
    const std::string help = help_line == kHelp.end() ? "Core option " + name : help_line->second;
    app.add_option(flag_of(name), values[name], help)->group("Optimizer");
  }
}

Options OptimizerFlags::resolve(const Options& fallback) const {
  Options o = flavor.empty() ? fallback : Options::from_flavor(flavor_from_string(flavor));
  if (flavor.empty() && backend == "torch") {
    o = Options::from_flavor(Flavor::torch);
    o.lr = fallback.lr, o.alpha = fallback.alpha, o.eps = fallback.eps;
  }
  if (!values.at("alpha").empty() && !values.at("rho").empty()) {
    throw InvalidOption("--alpha and --rho name the same option: give one");
  }
  for (const auto& [name, text] : values) {
    if (!text.empty()) o.set(name, text);
  }
  o.validate();
  check_backend(backend, o);
  return o;
}

void check_backend(const std::string& backend, const Options& options) {
  if (backend == "rmsprop") return;
  if (backend != "torch") throw InvalidOption("backend '" + backend + "': use rmsprop or torch");
  Options expressible = Options::from_flavor(Flavor::torch);
  for (const auto& [name, value] : expressible.to_pairs()) {
    if (name == "lr" || name == "alpha" || name == "eps" || name == "weight_decay" ||
        name == "momentum" || name == "centered" || name == "non_finite") {
      continue;
    }
    for (const auto& [wanted_name, wanted] : options.to_pairs()) {
      if (wanted_name == name && wanted != value) {
        throw InvalidOption("--backend torch: torch::optim::RMSprop has no " + name + "=" + wanted +
                            " (it supports lr, alpha, eps, weight_decay, momentum, "
                            "centered)");
      }
    }
  }
}

std::unique_ptr<::torch::optim::Optimizer> make_optimizer(const std::string& backend,
                                                          const Options& options,
                                                          std::vector<::torch::Tensor> params,
                                                          int threads) {
  if (backend == "rmsprop") {
    auto opt = std::make_unique<rmsprop::torch::RMSprop>(std::move(params),
                                                         rmsprop::torch::RMSpropOptions(options));
    opt->set_kernel_config({threads, {}});
    return opt;
  }
  check_backend(backend, options);
  return std::make_unique<::torch::optim::RMSprop>(std::move(params),
                                                   ::torch::optim::RMSpropOptions(options.lr)
                                                       .alpha(options.alpha)
                                                       .eps(options.eps)
                                                       .weight_decay(options.weight_decay)
                                                       .momentum(options.momentum)
                                                       .centered(options.centered));
}

}  // namespace rmsprop::cli
