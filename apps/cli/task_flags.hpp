// The flags that choose a training task (model, data, schedule) and where its results go;
// shared by `train`, `compare` and (later) `tune`.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "data.hpp"
#include "trainer.hpp"

namespace rmsprop::cli {

// The most epochs a run takes: every epoch is a checkpointed pass over the data, so more is a
// typo (and a count near 2^63 would overflow the epoch arithmetic).
inline constexpr std::int64_t kMaxEpochs = 1'000'000;

struct TaskFlags {
  ModelSpec model;
  std::int64_t epochs = 10, batch_size = 32, train_limit = 0, test_limit = 0;
  std::uint64_t seed = 42;
  int threads = 0;
  double val_fraction = 0.2;
  std::string data_dir = kFashionMnistDir.string();
  std::string out;
  bool plots = true;
  bool progress = stderr_is_terminal_default();

  void add_to(CLI::App& app);
  // The data the model trains on: Fashion-MNIST, or generated points for --model linreg.
  Dataset load() const;
  // Settings for the trainer (optimizer fields left to the caller).
  // --threads, or the cores shared among `processes_per_machine` processes (ranks of one
  // machine under mpirun).
  TrainSettings settings(int processes_per_machine = 1) const;
  static bool stderr_is_terminal_default();
};

}  // namespace rmsprop::cli
