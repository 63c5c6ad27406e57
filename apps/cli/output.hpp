// A run's folder: its JSON and CSV results, and the PNG plots drawn from them.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "trainer.hpp"

namespace rmsprop::cli {

// `requested` when given (created if needed), else a new folder runs/<command>-<time>.
std::filesystem::path make_run_folder(const std::string& requested, const std::string& command);

nlohmann::json to_json(const TrainResult& result);
nlohmann::json to_json(const Dataset& data);  // name and sizes
void write_json(const std::filesystem::path& path, const nlohmann::json& document);
// One row per epoch:
// epoch,train_loss,train_accuracy,val_loss,val_accuracy,seconds,optimizer_seconds (accuracy columns
// empty for regression); `label` adds a first column "optimizer".
void write_epochs_csv(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, TrainResult>>& runs, bool classify);

// The Python that runs the CLI's scripts: $RMSPROP_PYTHON, else Debian's (RMSPROP_PYTHON at
// build time) — the one with matplotlib, torch and Optuna.
std::string python_interpreter();
// One of apps/*.py: from the source tree when it is there, else where `install` put it.
std::filesystem::path app_script(const std::string& file);

// Runs apps/plot.py with Debian's Python (matplotlib). Returns false, after printing why to
// stderr, when it cannot (the results are written anyway).
bool plot(const std::vector<std::string>& arguments);

}  // namespace rmsprop::cli
