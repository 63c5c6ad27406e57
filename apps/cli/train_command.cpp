#include <fcntl.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "commands.hpp"
#include "optimizer_flags.hpp"
#include "output.hpp"
#include "rmsprop/error.hpp"
#include "task_flags.hpp"

#if RMSPROP_CLI_MPI
#include "rmsprop/mpi.hpp"
#include "sharded_state.hpp"
#endif

namespace rmsprop::cli {

namespace {

struct TrainFlags {
  TaskFlags task;
  OptimizerFlags optimizer;
  std::string resume;
  std::int64_t stop_after = 0;
  int report_fd = -1;
  bool distributed = false, shard_state = false;
};

// Ranks of this machine under mpirun (Open MPI, MPICH), for sharing its cores.
int ranks_on_this_machine() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"}) {
    if (const char* v = std::getenv(name)) return std::max(1, std::atoi(v));
  }
  return 1;
}

// train --distributed: MPI for the command's lifetime and the gradient averaging.
class DistributedRun {
 public:
  DistributedRun(bool on, bool shard_state) : shard_state_(shard_state) {
    if (!on) return;
#if RMSPROP_CLI_MPI
    if (!mpi::available()) {
      throw InvalidOption(
          "--distributed: this rmsprop was built without MPI (install libopenmpi-dev "
          "openmpi-bin and rebuild)");
    }
    session_ = std::make_unique<mpi::Session>(nullptr, nullptr);
    averager_ = std::make_unique<mpi::GradientAverager>(mpi::Communicator::world());
#else
    throw InvalidOption("--distributed: this rmsprop was built without rmsprop::mpi");
#endif
  }
  // An error on one rank of several ends the job (the others wait in a collective for this
  // rank): the error is printed first, as the CLI prints any.
  [[noreturn]] void end_job_with(const std::exception& e) const {
#if RMSPROP_CLI_MPI
    std::fprintf(stderr, "rmsprop: %s\n", e.what());
    std::fflush(stderr);
    std::fflush(stdout);
    mpi::Session::abort(1);
#else
    throw std::runtime_error(e.what());
#endif
  }
  bool several_ranks() const {
#if RMSPROP_CLI_MPI
    return averager_ && averager_->communicator().size() > 1;
#else
    return false;
#endif
  }
  std::optional<Distribution> distribution() const {
#if RMSPROP_CLI_MPI
    if (averager_) {
      const mpi::Communicator& c = averager_->communicator();
      mpi::GradientAverager* averager = averager_.get();
      Distribution d{c.rank(), c.size(),
                     [averager](const std::vector<Param>& p) { averager->average(p); }, nullptr};
      if (shard_state_) {
        d.shard = [c](::torch::optim::Optimizer& whole, int threads) {
          return shard_state(whole, c, threads);
        };
      }
      return d;
    }
#endif
    return std::nullopt;
  }

 private:
  bool shard_state_ = false;
#if RMSPROP_CLI_MPI
  std::unique_ptr<mpi::Session> session_;
  std::unique_ptr<mpi::GradientAverager> averager_;
#endif
};

// One JSON line per epoch on an inherited descriptor: `rmsprop tune` reads them to prune.
std::function<void(const EpochRecord&)> epoch_reporter(int fd) {
  const int mode = fcntl(fd, F_GETFL);
  if (mode == -1 || (mode & O_ACCMODE) == O_RDONLY) {
    throw InvalidOption("--report-fd " + std::to_string(fd) +
                        ": not a file descriptor open for writing");
  }
  std::FILE* out = fdopen(fd, "w");
  if (!out) throw InvalidOption("--report-fd " + std::to_string(fd) + ": cannot be opened");
  return [out](const EpochRecord& r) {
    const nlohmann::json line = {{"epoch", r.epoch},
                                 {"train_loss", r.train_loss},
                                 {"val_loss", r.val_loss},
                                 {"val_accuracy", r.val_accuracy}};
    std::fprintf(out, "%s\n", line.dump().c_str());
    std::fflush(out);
  };
}

void train_and_report(const TrainFlags& f, const DistributedRun& mpi);

void run_train(const TrainFlags& f) {
  if (f.shard_state && f.optimizer.backend != "rmsprop") {
    throw InvalidOption(
        "--shard-state: the state is sharded by rmsprop's own optimizer; not with "
        "--backend " +
        f.optimizer.backend);
  }
  const DistributedRun mpi(f.distributed, f.shard_state);
  try {
    train_and_report(f, mpi);
  } catch (const std::exception& e) {
    if (mpi.several_ranks()) mpi.end_job_with(e);
    throw;
  }
}

void train_and_report(const TrainFlags& f, const DistributedRun& mpi) {
  TrainSettings s = f.task.settings(f.distributed ? ranks_on_this_machine() : 1);
  s.options = f.optimizer.resolve(default_rmsprop());
  s.backend = f.optimizer.backend;
  s.resume = f.resume;
  s.stop_after = f.stop_after;
  s.distribution = mpi.distribution();
  // Under --distributed every rank trains; rank 0 alone prints and writes the run folder.
  if (s.distribution && s.distribution->rank != 0) {
    s.progress = false;
    std::FILE* quiet = std::fopen("/dev/null", "w");
    if (!quiet) throw std::runtime_error("cannot open /dev/null");
    const Dataset data = f.task.load();
    train(s, data, quiet);
    std::fclose(quiet);
    return;
  }
  if (f.report_fd >= 0) s.on_epoch = epoch_reporter(f.report_fd);
  const auto dir = make_run_folder(f.task.out, "train");
  const Dataset data = f.task.load();
  s.checkpoint = dir / "checkpoint.pt";
  if (s.distribution) {
    std::printf("distributed: %d ranks, each %lld of every %lld examples of a batch%s\n",
                s.distribution->ranks, static_cast<long long>(s.batch_size / s.distribution->ranks),
                static_cast<long long>(s.batch_size),
                f.shard_state ? "; optimizer state sharded, 1/N on each rank" : "");
  }
  std::printf("%s: %s, %lld train / %lld validation / %lld test examples; %s, %d threads\n",
              data.name.c_str(), describe(s.model, data.classes).c_str(),
              static_cast<long long>(data.train.size()), static_cast<long long>(data.val.size()),
              static_cast<long long>(data.test.size()), s.backend.c_str(), s.threads);
  std::fflush(stdout);
  const TrainResult r = train(s, data, stdout);

  nlohmann::json doc = to_json(r);
  doc["command"] = "train";
  doc["dataset"] = to_json(data);
  nlohmann::json options;
  for (const auto& [name, value] : s.options.to_pairs()) options[name] = value;
  doc["optimizer"] = {{"backend", s.backend}, {"options", options}};
  doc["settings"] = {{"epochs", s.epochs},
                     {"batch_size", s.batch_size},
                     {"ranks", s.distribution ? s.distribution->ranks : 1},
                     {"seed", s.seed},
                     {"threads", s.threads},
                     {"finished", r.test_loss.has_value()}};
  write_json(dir / "metrics.json", doc);
  write_epochs_csv(dir / "metrics.csv", {{"", r}}, data.classes > 0);
  if (f.task.plots && !r.epochs.empty()) {
    plot({"curves", (dir / "metrics.csv").string(), dir.string(),
          describe(s.model, data.classes) + " on " + data.name});
  }
  if (!r.test_loss) {
    std::printf("stopped after epoch %zu (--stop-after); continue with --resume %s\n",
                r.epochs.size(), s.checkpoint.c_str());
  } else if (r.test_accuracy) {
    std::printf("test accuracy: %.4f\n", *r.test_accuracy);
  } else {
    std::printf("test loss: %.6g\n", *r.test_loss);
  }
  std::printf("results in %s\n", dir.c_str());
  if (r.diverged) {
    const auto& last = r.epochs.back();
    const bool val = data.val.size() > 0;
    char text[160];
    std::snprintf(text, sizeof text,
                  "%s loss %.6g after epoch %lld, above the untrained model's %.6g",
                  val ? "validation" : "training", val ? last.val_loss : last.train_loss,
                  static_cast<long long>(last.epoch), r.initial_loss);
    throw std::runtime_error("the run diverged: " + std::string(text) +
                             " (learning rate too high?); results in " + dir.string());
  }
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto flags = std::make_shared<TrainFlags>();
  CLI::App* cmd = app.add_subcommand(
      "train",
      "Train a model (default: the seed's Fashion-MNIST MLP 784-32-10, dropout 0.2, RMSProp lr "
      "1e-3 rho 0.9 eps 1e-8, batch 32, 10 epochs, 20% held out); prints each epoch and the "
      "test accuracy, writes metrics.json, metrics.csv, loss.png, accuracy.png and a "
      "checkpoint after every epoch");
  flags->task.add_to(*cmd);
  flags->optimizer.add_to(*cmd);
  cmd->add_option("--resume", flags->resume, "Continue from a checkpoint.pt of an earlier run")
      ->check(CLI::ExistingFile)
      ->group("Task");
  cmd->add_option("--stop-after", flags->stop_after,
                  "Stop after N epochs of this invocation (as if interrupted; --resume goes on)")
      ->check(CLI::NonNegativeNumber)
      ->group("Task");
  cmd->add_flag("--distributed", flags->distributed,
                "Data-parallel training under mpirun (mpirun -np N rmsprop train --distributed): "
                "each rank takes 1/N of every batch, gradients are averaged across ranks "
                "(deterministic), rank 0 writes the results; --resume works at any N")
      ->group("Task");
  cmd->add_flag("--shard-state", flags->shard_state,
                "With --distributed: each rank keeps the optimizer state of 1/N of the "
                "parameters (ZeRO stage 1), the same weights to the bit; the checkpoint is the "
                "one a single process writes")
      ->needs("--distributed")
      ->group("Task");
  cmd->add_option("--report-fd", flags->report_fd,
                  "Write one JSON line per epoch (epoch, train_loss, val_loss, val_accuracy) to "
                  "this open file descriptor (how `rmsprop tune` follows its trials)")
      ->check(CLI::NonNegativeNumber)
      ->group("Output");
  cmd->callback([flags] { run_train(*flags); });
}

}  // namespace rmsprop::cli
