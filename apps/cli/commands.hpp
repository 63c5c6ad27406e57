// The subcommands of `rmsprop`, each registering its flags and its action on the app.
#pragma once

#include <CLI/CLI.hpp>

namespace rmsprop::cli {

void add_train_command(CLI::App& app);
void add_compare_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_experiment_command(CLI::App& app);
void add_tune_command(CLI::App& app);

}  // namespace rmsprop::cli
