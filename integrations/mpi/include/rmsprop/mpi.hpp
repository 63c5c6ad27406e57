// Data-parallel steps and sharded optimizer state (ZeRO stage 1) over MPI.
//
// NOTE: [MPI backend]
// One reduction, used by both classes, so that they agree to the bit: a gradient element's
// average over N ranks is ((g_0 + g_1) + g_2) + ... + g_{N-1}, in rank order, divided by N,
// computed once by the rank that owns the element and sent to the others. It is built from
// MPI_Alltoallv (each rank receives every rank's copy of its part) and MPI_Allgatherv (each
// part back to every rank) — the bytes of a ring allreduce, 2(N−1)/N of the gradient per rank
// — and never from MPI_Allreduce, whose order of additions Open MPI chooses by message size
// and world size. The same world size gives the same bits run after run, on every rank.
//
// DataParallel: every rank holds the whole optimizer and steps every parameter with the
// averaged gradient. ShardedOptimizer: the parameters, concatenated in group order, are cut
// into N contiguous shards whose edges fall on whole kernel chunks of a tensor (so an 8-bit
// block is never split); each rank keeps state for its shard only (1/N of it), steps it with
// the same fused kernel, and the updated shards are gathered into every rank's parameters.
// The two give the same parameters to the bit.
//
// Built when CMake finds MPI (Debian: libopenmpi-dev); available() says whether this build
// has it, and without it every constructor throws rmsprop::Error saying so.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "rmsprop/optimizer.hpp"

namespace rmsprop::mpi {

// This build has the MPI backend.
bool available();

// MPI for the process's lifetime: MPI_Init_thread (funneled) on construction when MPI is not
// yet initialized, MPI_Finalize on destruction when this object initialized it.
class Session {
 public:
  Session(int* argc, char*** argv);
  ~Session();
  // Ends every rank of the job with `exit_code` (MPI_Abort): for an error on one rank that the
  // others, waiting in a collective, would otherwise wait out.
  [[noreturn]] static void abort(int exit_code);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

 private:
  bool owns_ = false;
};

// An MPI communicator, without mpi.h in this header: world(), or `of(&comm)` for an MPI_Comm
// of your own (the pointer is read once; the communicator must outlive the users).
class Communicator {
 public:
  static Communicator world();
  static Communicator of(const void* mpi_comm);
  int rank() const { return rank_; }
  int size() const { return size_; }
  const void* native() const { return comm_.get(); }  // an MPI_Comm*

  // How long a collective may wait for the other ranks before this rank gives up with an
  // rmsprop::Error naming it (a rank that was killed or stopped calling step(): an error, not
  // a hang). Default 600 s; copies made after the call keep it.
  void set_timeout(double seconds);
  double timeout() const { return timeout_; }

 private:
  std::shared_ptr<const void> comm_;
  int rank_ = 0, size_ = 1;
  double timeout_ = 600;
};

// Traffic of the last step on this rank, for the benchmarks.
struct StepTraffic {
  std::size_t gradient_bytes_sent = 0;  // reduce-scatter part (Alltoallv), own part excluded
  std::size_t gradient_bytes_received = 0;
  std::size_t gather_bytes_sent = 0;  // all-gather part (gradients or parameters)
};

// The gradients of a parameter list averaged across ranks, in place (NOTE: [MPI backend]), in
// buckets of at most `bucket_bytes`: for a training loop that steps with an optimizer of its
// own (the CLI's libtorch one), and inside DataParallel. Gradients are float32 or float64,
// one dtype per call; parameters without a gradient are left out, and every rank must pass
// the same shapes and the same parameters with a gradient (else InvalidArgument on every
// rank). The buffers may differ from call to call (a framework may reallocate gradients).
class GradientAverager {
 public:
  explicit GradientAverager(Communicator comm, std::size_t bucket_bytes = std::size_t(25) << 20);
  ~GradientAverager();
  GradientAverager(GradientAverager&&) noexcept;
  void average(const std::vector<Param>& params);
  const StepTraffic& last_traffic() const;
  const Communicator& communicator() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Every rank steps every parameter with the gradients averaged across ranks (NOTE: [MPI
// backend]). Gradients are float32 or float64 (complex: their real view); the buffers are the
// caller's, as for Optimizer.
class DataParallel {
 public:
  DataParallel(std::vector<ParamGroup> groups, Communicator comm,
               std::size_t bucket_bytes = std::size_t(25) << 20);
  ~DataParallel();
  DataParallel(DataParallel&&) noexcept;

  // Averages the gradients (every rank must call it, with the same shapes), then steps.
  StepResult step();
  Optimizer& optimizer();
  const Optimizer& optimizer() const;
  const StepTraffic& last_traffic() const;

  // Checkpoints, collective (NOTE: [MPI checkpoints]): save() writes the optimizer's
  // checkpoint on rank 0; load() reads it on every rank, from any world size and from
  // ShardedOptimizer::save or a single process's Optimizer::save over the same groups.
  void save(const std::filesystem::path& path) const;
  void load(const std::filesystem::path& path);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ZeRO stage 1 (NOTE: [MPI backend]): each rank keeps the optimizer state of its shard.
// Same dtypes as DataParallel; stochastic rounding is refused (its random stream is indexed
// by the element's place in the whole tensor).
class ShardedOptimizer {
 public:
  ShardedOptimizer(std::vector<ParamGroup> groups, Communicator comm);
  ~ShardedOptimizer();
  ShardedOptimizer(ShardedOptimizer&&) noexcept;

  // Reduce-scatters the gradients, steps this rank's shard, all-gathers the parameters. A
  // non-finite gradient on any rank is seen by all: every rank skips (policy skip) or throws
  // NonFiniteError naming it (policy error).
  StepResult step();
  // This rank's shard of the concatenated parameters: [begin, end) in values.
  std::size_t shard_begin() const;
  std::size_t shard_end() const;
  std::size_t total_values() const;
  // The optimizer over this rank's shard views (its state is 1/N of the whole).
  const Optimizer& shard_optimizer() const;
  // How the shard's kernel runs (threads, SIMD target), as Optimizer::set_kernel_config.
  void set_kernel_config(const KernelConfig& config);
  const StepTraffic& last_traffic() const;
  std::int64_t steps_taken() const;  // applied steps (skipped ones excluded)

  // NOTE: [MPI checkpoints] Collective. save() gathers every shard's state to rank 0, which
  // writes the one checkpoint a single process's Optimizer over the same groups would write
  // (rank 0 holds the whole state for the time of the call). load() reads that file on every
  // rank (a file system they all see) and keeps the rank's shard, so a run saved at N ranks
  // resumes at any M, sharded or not (DataParallel, Optimizer). Either all ranks succeed or
  // all throw CheckpointError naming the failing rank, their state unchanged. The parameters
  // themselves are the caller's to save (every rank holds them all).
  void save(const std::filesystem::path& path) const;
  void load(const std::filesystem::path& path);
  // The same with the file in memory, as Optimizer::save_to_memory / load_from_memory: rank 0
  // gets the bytes (the other ranks an empty vector); every rank passes the bytes to load
  // (`name` stands for the file in messages).
  std::vector<std::byte> save_to_memory() const;
  void load_from_memory(std::span<const std::byte> bytes, std::string_view name = "(memory)");

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rmsprop::mpi
