#include "optimizer_flags.hpp"

#include <torch/optim/rmsprop.h>

#include <algorithm>

#include "flag_checks.hpp"
#include "rmsprop/error.hpp"
#include "rmsprop/torch.hpp"

namespace rmsprop::cli {
// The seed's optimizer: RMSProp lr 1e-3, rho 0.9, eps 1e-8, Keras' conventions.
Options default_rmsprop() {
  Options o = Options::from_flavor(Flavor::keras);
  o.lr = 1e-3;
  o.alpha = 0.9;
  o.eps = 1e-8;
  return o;
}

std::string flag_of(std::string name) {
  return option_flag(name);
}

void OptimizerFlags::add_to(CLI::App& app) {
  std::string flavors;
  for (Flavor f : all_flavors())
    flavors += (flavors.empty() ? "" : ", ") + std::string(to_string(f));
  app.add_option(
         "--flavor", flavor,
         "Optimizer preset: " + flavors + " (default: keras with lr 1e-3, rho 0.9, eps 1e-8)")
      ->check(non_empty())
      ->group("Optimizer");
  app.add_option("--backend", backend,
                 "rmsprop (ours, every option) or torch (torch::optim::RMSprop, to compare)")
      ->check(CLI::IsMember({"rmsprop", "torch"}))
      ->group("Optimizer");
  for (const OptionInfo& info : option_table()) {
    app.add_option(info.flag(), values[std::string(info.name)], std::string(info.help))
        ->check(non_empty())
        ->group("Optimizer");
  }
  for (const auto& [alias, name] : option_aliases()) {
    app.add_option(flag_of(std::string(alias)), values[std::string(alias)],
                   "Alias of " + flag_of(std::string(name)))
        ->check(non_empty())
        ->group("Optimizer");
  }
}

Options OptimizerFlags::resolve(const Options& fallback) const {
  Options o = flavor.empty() ? fallback : Options::from_flavor(flavor_from_string(flavor));
  if (flavor.empty() && backend == "torch") {
    o = Options::from_flavor(Flavor::torch);
    o.lr = fallback.lr, o.alpha = fallback.alpha, o.eps = fallback.eps;
  }
  // torch::optim::RMSprop checks no gradient: what it does is the policy propagate
  if (backend == "torch" && values.at("non_finite").empty()) {
    o.non_finite = NonFinitePolicy::propagate;
  }
  for (const auto& [alias, name] : option_aliases()) {
    if (!values.at(std::string(alias)).empty() && !values.at(std::string(name)).empty()) {
      throw InvalidOption(flag_of(std::string(name)) + " and " + flag_of(std::string(alias)) +
                          " name the same option: give one");
    }
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
        name == "momentum" || name == "centered") {
      continue;
    }
    if (name == "non_finite" && options.non_finite != NonFinitePolicy::propagate) {
      throw InvalidOption("--backend torch: torch::optim::RMSprop has no non_finite=" +
                          std::string(to_string(options.non_finite)) +
                          " (it applies NaN and inf gradients: non_finite=propagate)");
    }
    if (name == "non_finite") continue;
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
