// The optimizer's command-line flags: --flavor, and one flag per core option (its name with
// dashes: --weight-decay, --eps-in-sqrt, ...), parsed by Options::set.
#pragma once

#include <torch/optim/optimizer.h>

#include <CLI/CLI.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rmsprop/kernel.hpp"
#include "rmsprop/options.hpp"

namespace rmsprop::cli {

struct OptimizerFlags {
  std::string flavor;                         // empty: the command's default options
  std::string backend = "rmsprop";            // "rmsprop" (ours) or "torch" (torch::optim::RMSprop)
  std::map<std::string, std::string> values;  // core option name -> text as given

  // Registers the flags on `app` (this object must outlive parsing).
  void add_to(CLI::App& app);
  // The options: the flavor's preset (or `fallback` when no --flavor; for --backend torch,
  // `fallback`'s lr, alpha and eps in flavor torch), then each given flag. Throws
  // InvalidOption naming the flag and value, or what the backend cannot do.
  Options resolve(const Options& fallback) const;
};

// The commands' default optimizer, the seed's: RMSProp lr 1e-3, rho 0.9, eps 1e-8, Keras'
// conventions.
Options default_rmsprop();

// The command-line flag of a core option: "weight_decay" -> "--weight-decay".
std::string flag_of(std::string name);

// Throws InvalidOption when `backend` cannot run `options` (torch::optim::RMSprop: flavor
// "torch" with lr, alpha, eps, weight_decay, momentum and centered only), naming the option.
void check_backend(const std::string& backend, const Options& options);

// The optimizer for `params`: ours (rmsprop::torch::RMSprop, `threads` for the kernel) or, for
// backend "torch", torch::optim::RMSprop with the same lr/alpha/eps/weight_decay/momentum/
// centered (other options are refused there, by name).
std::unique_ptr<::torch::optim::Optimizer> make_optimizer(const std::string& backend,
                                                          const Options& options,
                                                          std::vector<::torch::Tensor> params,
                                                          int threads);

}  // namespace rmsprop::cli
