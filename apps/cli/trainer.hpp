// Training a model on a dataset with one optimizer: epochs of shuffled mini-batches, validation
// after each epoch, a checkpoint after each epoch, test metrics at the end.
#pragma once

#include <torch/optim/optimizer.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data.hpp"
#include "models.hpp"
#include "rmsprop/optimizer.hpp"
#include "rmsprop/options.hpp"

namespace rmsprop::cli {

struct EpochRecord;

// Data-parallel training over ranks (train --distributed): every rank holds the whole model
// and optimizer, takes its contiguous share of each global batch, and steps with the gradients
// averaged across the ranks; the ranks stay bitwise identical.
// The optimizer's state sharded over the ranks (train --distributed --shard-state): each
// rank keeps 1/N of it; the checkpoint stays the one a single process writes.
class ShardedState {
 public:
  virtual ~ShardedState() = default;
  // Averages the model's gradients across the ranks and steps every parameter (every rank).
  virtual void step() = 0;
  // Collective. gather_into: rank 0's `whole` (the optimizer the checkpoint saves) gets the
  // whole state, for the time of a save. scatter_from: every rank's `whole`, just resumed,
  // gives its state (and options) to the shards and keeps none.
  virtual void gather_into(::torch::optim::Optimizer& whole) = 0;
  virtual void scatter_from(::torch::optim::Optimizer& whole) = 0;
};

struct Distribution {
  int rank = 0, ranks = 1;
  // Averages the gradient buffers of `params` across the ranks, in place (rmsprop::mpi).
  std::function<void(const std::vector<Param>&)> average;
  // Set under --shard-state: the sharded state of `whole`'s parameters (their buffers must
  // not move from then on), its kernel on `threads` threads.
  std::function<std::unique_ptr<ShardedState>(::torch::optim::Optimizer& whole, int threads)> shard;
};

struct TrainSettings {
  ModelSpec model;
  std::int64_t epochs = 10, batch_size = 32;
  std::uint64_t seed = 42;
  int threads = 0;  // 0: all cores
  Options options;
  std::string backend = "rmsprop";
  std::filesystem::path checkpoint;  // written after every epoch ("" = none)
  std::filesystem::path resume;      // a checkpoint to continue from ("" = start afresh)
  std::int64_t stop_after = 0;       // stop after this many epochs of this invocation (0: never)
  bool progress = false;
  std::string label = "train";  // progress bar label
  // Called after each epoch's validation, before its checkpoint (`tune` prunes on it).
  std::function<void(const EpochRecord&)> on_epoch;
  std::optional<Distribution> distribution;  // unset: one process
};

struct EpochRecord {
  std::int64_t epoch = 0;  // 1-based
  double train_loss = 0, train_accuracy = 0, val_loss = 0, val_accuracy = 0;
  double seconds = 0, optimizer_seconds = 0;  // wall time of the epoch's training, of its steps
};

struct TrainResult {
  std::vector<EpochRecord> epochs;                 // all of them, resumed ones included
  std::optional<double> test_loss, test_accuracy;  // unset when stopped early
  std::int64_t parameters = 0;
  std::string model;           // describe(spec)
  std::string weights_digest;  // FNV-1a of the final parameters' bytes: equal runs, equal digest
  // The untrained model's loss on the validation split (the training split when there is none);
  // diverged: the last epoch ended with a loss above it (or a non-finite one) — training made
  // the model worse than its initialization.
  double initial_loss = 0;
  bool diverged = false;
};

// Same settings, seed and threads give the same numbers; a run resumed from its checkpoint
// ends with the same weights as one never stopped. Lines of progress go to `log`.
// Throws std::runtime_error / rmsprop::Error with a readable message.
TrainResult train(const TrainSettings& settings, const Dataset& data, std::FILE* log);

}  // namespace rmsprop::cli
