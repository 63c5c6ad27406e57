// The seeds' experiments behind `rmsprop experiment NAME`: each runs, writes its data (CSV)
// and a plot into a folder, and reports its findings, with whether the seed's claim held.
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "rmsprop/options.hpp"

namespace rmsprop::cli {

struct ExperimentOutput {
  std::vector<std::string> lines;  // the findings, for people
  nlohmann::json findings;         // the same numbers, for programs and tests
  bool holds = false;              // the seed's claim held in this run
};

struct Experiment {
  std::string name, claim;
  std::function<ExperimentOutput(const std::filesystem::path& dir, bool plots)> run;
};

const std::vector<Experiment>& experiments();

// `value` with 6 significant digits ("1e-07", "0.00888889", "888.889").
std::string number(double value);

// One line per step: a header, then rows of numbers (full precision).
void write_csv(const std::filesystem::path& path, const std::vector<std::string>& header,
               const std::vector<std::vector<double>>& rows);

// The effective learning rate of each step of a one-parameter optimizer: |Δθ| / |g|.
std::vector<double> effective_lrs(const Options& options, const std::vector<double>& grads);

}  // namespace rmsprop::cli
