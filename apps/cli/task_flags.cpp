#include "task_flags.hpp"

#include <dlfcn.h>
#include <torch/torch.h>

#include <limits>
#include <thread>

#include "flag_checks.hpp"
#include "progress.hpp"

namespace rmsprop::cli {

bool TaskFlags::stderr_is_terminal_default() {
  return stderr_is_terminal();
}

void TaskFlags::add_to(CLI::App& app) {
  // A flag given twice takes its last value (scripts append overrides); lists take all.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--model", model.kind,
                 "mlp, cnn, logreg (Fashion-MNIST) or linreg (generated data)")
      ->check(CLI::IsMember({"mlp", "cnn", "logreg", "linreg"}))
      ->capture_default_str()
      ->group("Task");
  app.add_option("--hidden", model.hidden, "mlp hidden layer sizes, e.g. 128,64")
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->capture_default_str()
      ->group("Task");
  app.add_option("--dropout", model.dropout, "Dropout after each hidden layer (mlp, cnn)")
      ->check(CLI::Range(0.0, 1.0))  // NaN and 1 are refused by make_model
      ->capture_default_str()
      ->group("Task");
  app.add_option("--epochs", epochs, "Epochs")
      ->check(integer_in(1, kMaxEpochs))
      ->capture_default_str()
      ->group("Task");
  app.add_option("--batch-size", batch_size, "Mini-batch size (more than the data: one batch)")
      ->check(integer_in(1, std::numeric_limits<std::int64_t>::max()))
      ->capture_default_str()
      ->group("Task");
  app.add_option("--seed", seed, "Seed of initialization, shuffling and dropout")
      ->check(unsigned_integer())
      ->capture_default_str()
      ->group("Task");
  app.add_option("--threads", threads, "Threads for libtorch and the optimizer (0: all cores)")
      ->check(thread_count())
      ->capture_default_str()
      ->group("Task");
  app.add_option("--val-fraction", val_fraction, "Last fraction of the training set held out")
      ->check(CLI::Range(0.0, 0.9))
      ->capture_default_str()
      ->group("Task");
  app.add_option("--data", data_dir, "Fashion-MNIST folder (IDX, gzip)")
      ->capture_default_str()
      ->group("Data");
  app.add_option("--train-limit", train_limit, "Use the first N training images (0: all)")
      ->check(integer_in(0, std::numeric_limits<std::int64_t>::max()))
      ->group("Data");
  app.add_option("--test-limit", test_limit, "Use the first N test images (0: all)")
      ->check(integer_in(0, std::numeric_limits<std::int64_t>::max()))
      ->group("Data");
  app.add_option("--out", out, "Run folder for results and plots (default: a new one under runs/)")
      ->group("Output");
  app.add_flag("!--no-plots", plots, "Write no PNG plots")->group("Output");
  app.add_flag("--progress,!--no-progress", progress,
               "Progress bar on stderr (default: when stderr is a terminal)")
      ->group("Output");
}

Dataset TaskFlags::load() const {
  if (model.kind == "linreg") return make_linear_regression(seed, val_fraction);
  return load_fashion_mnist(data_dir, val_fraction, train_limit, test_limit);
}

namespace {

// NOTE: [one BLAS thread] libtorch parallelizes with OpenMP; OpenBLAS (Debian's libblas.so.3
// once libopenblas0-pthread is installed) adds a pthread pool of its own, and on a small
// machine the two pools spin against each other: one BLAS thread took the default run from
// 0.43 to 0.33 s/epoch here, with the same results. Looked up at run time: with another BLAS
// behind libblas.so.3 the symbol is absent and nothing changes.
void use_one_blas_thread() {
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set(1);
  }
}

}  // namespace

TrainSettings TaskFlags::settings(int processes_per_machine) const {
  TrainSettings s;
  s.model = model;
  s.epochs = epochs;
  s.batch_size = batch_size;
  s.seed = seed;
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  s.threads = threads > 0 ? threads : std::max(1, cores / std::max(1, processes_per_machine));
  s.progress = progress;
  ::torch::set_num_threads(s.threads);
  use_one_blas_thread();
  return s;
}

}  // namespace rmsprop::cli
