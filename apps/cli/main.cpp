// rmsprop: train real models with the RMSProp family (libtorch), compare optimizers, and
// benchmark the optimizer step. `rmsprop SUBCOMMAND --help` for each.
#include <c10/util/Exception.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "rmsprop: train models with the RMSProp optimizer family, compare optimizers, benchmark "
      "the step.\nWith no arguments, `rmsprop train` trains the Fashion-MNIST classifier."};
  app.require_subcommand(1);
  rmsprop::cli::add_train_command(app);
  rmsprop::cli::add_compare_command(app);
  rmsprop::cli::add_bench_command(app);
  rmsprop::cli::add_experiment_command(app);
  rmsprop::cli::add_tune_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "rmsprop: %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rmsprop: %s\n", e.what());
    return 1;
  }
  return 0;
}
