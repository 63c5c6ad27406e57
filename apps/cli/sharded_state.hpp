// train --distributed --shard-state: trainer.hpp's ShardedState on rmsprop::mpi's
// ShardedOptimizer (built when the CLI links rmsprop::mpi).
#pragma once

#include <torch/optim/optimizer.h>

#include <memory>

#include "rmsprop/mpi.hpp"
#include "trainer.hpp"

namespace rmsprop::cli {

// The optimizer state of `whole`'s parameters sharded over `comm`'s ranks, its kernel on
// `threads` threads. `whole` must be an rmsprop::torch::RMSprop over float32 CPU tensors,
// which must stay where they are (InvalidOption otherwise, naming what is wrong).
std::unique_ptr<ShardedState> shard_state(::torch::optim::Optimizer& whole,
                                          const mpi::Communicator& comm, int threads);

}  // namespace rmsprop::cli
