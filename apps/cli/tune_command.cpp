// rmsprop tune: a grid or random search over optimizer options on a `train` task. Each trial
// is its own `rmsprop train` process (libtorch's seeds and thread pool are per process, so
// trials run side by side and stay deterministic), `--jobs` at a time.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <thread>

#include "commands.hpp"
#include "optimizer_flags.hpp"
#include "output.hpp"
#include "rmsprop/error.hpp"
#include "task_flags.hpp"

extern char** environ;

namespace rmsprop::cli {
namespace {

struct TuneFlags {
  TaskFlags task;
  OptimizerFlags optimizer;
  std::vector<std::string> grid, ranges;
  int random = 0, jobs = 0;
  std::uint64_t search_seed = 1;
};

using Setting = std::vector<std::pair<std::string, std::string>>;  // option name, value text

std::pair<std::string, std::string> split(const std::string& spec, const char* flag) {
  const auto eq = spec.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
    throw InvalidOption(std::string(flag) + " '" + spec + "': expected NAME=...");
  }
  // the canonical name (rho -> alpha); unknown names are refused here
  const std::string name(option_info(spec.substr(0, eq)).name);
  return {name, spec.substr(eq + 1)};
}

std::vector<Setting> grid_settings(const std::vector<std::string>& specs) {
  std::vector<Setting> out = {{}};
  for (const std::string& spec : specs) {
    const auto [name, list] = split(spec, "--grid");
    std::vector<std::string> values;
    for (std::size_t at = 0; at <= list.size();) {
      const std::size_t comma = std::min(list.find(',', at), list.size());
      values.push_back(list.substr(at, comma - at));
      at = comma + 1;
    }
    std::vector<Setting> next;
    for (const Setting& s : out) {
      for (const std::string& v : values) {
        Options check;
        check.set(name, v);  // refuse a bad value before running anything
        Setting t = s;
        t.emplace_back(name, v);
        next.push_back(t);
      }
    }
    out = next;
  }
  return out;
}

std::vector<Setting> random_settings(const std::vector<std::string>& specs, int count,
                                     std::uint64_t seed) {
  struct Range {
    std::string name;
    double lo, hi;
    bool log;
  };
  std::vector<Range> ranges;
  for (const std::string& spec : specs) {
    const auto [name, text] = split(spec, "--range");
    if (option_info(name).kind != OptionKind::number) {
      throw InvalidOption("--range '" + spec + "': " + name +
                          " is not a number option; give its values with --grid");
    }
    Range r{name, 0, 0, false};
    char scale[8] = "";
    if (std::sscanf(text.c_str(), "%lf:%lf:%7s", &r.lo, &r.hi, scale) < 2 || !(r.lo < r.hi) ||
        (scale[0] && std::string(scale) != "log") || (std::string(scale) == "log" && r.lo <= 0)) {
      throw InvalidOption("--range '" + spec +
                          "': expected NAME=LO:HI or NAME=LO:HI:log (LO < HI)");
    }
    r.log = std::string(scale) == "log";
    ranges.push_back(r);
  }
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<Setting> out;
  for (int k = 0; k < count; ++k) {
    Setting s;
    for (const Range& r : ranges) {
      const double u = unit(rng);
      const double v = r.log ? std::exp(std::log(r.lo) + u * (std::log(r.hi) - std::log(r.lo)))
                             : r.lo + u * (r.hi - r.lo);
      char text[32];
      std::snprintf(text, sizeof text, "%.4g", v);
      s.emplace_back(r.name, text);
    }
    out.push_back(s);
  }
  return out;
}

// The `rmsprop train` arguments that reproduce the task and the base optimizer.
std::vector<std::string> train_arguments(const TuneFlags& f, int threads) {
  const TaskFlags& t = f.task;
  std::string hidden;
  for (auto w : t.model.hidden) hidden += (hidden.empty() ? "" : ",") + std::to_string(w);
  std::vector<std::string> a = {"train",
                                "--model",
                                t.model.kind,
                                "--hidden",
                                hidden,
                                "--dropout",
                                std::to_string(t.model.dropout),
                                "--epochs",
                                std::to_string(t.epochs),
                                "--batch-size",
                                std::to_string(t.batch_size),
                                "--seed",
                                std::to_string(t.seed),
                                "--val-fraction",
                                std::to_string(t.val_fraction),
                                "--data",
                                t.data_dir,
                                "--train-limit",
                                std::to_string(t.train_limit),
                                "--test-limit",
                                std::to_string(t.test_limit),
                                "--threads",
                                std::to_string(threads),
                                "--no-plots",
                                "--no-progress",
                                "--backend",
                                f.optimizer.backend};
  if (!f.optimizer.flavor.empty()) a.insert(a.end(), {"--flavor", f.optimizer.flavor});
  for (const auto& [name, value] : f.optimizer.values) {
    if (!value.empty()) a.insert(a.end(), {flag_of(name), value});
  }
  return a;
}

struct Trial {
  Setting setting;
  std::filesystem::path dir;
  pid_t pid = 0;
  int status = -1;
  nlohmann::json result;  // metrics.json when it finished
};

pid_t spawn(const std::vector<std::string>& args, const std::filesystem::path& log) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + args[0] + ": " + std::strerror(rc));
  return pid;
}

std::string last_line(const std::filesystem::path& log) {
  std::ifstream in(log);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return last;
}

void run_tune(TuneFlags& f) {
  if (f.grid.empty() == f.ranges.empty()) {
    throw InvalidOption(
        "give --grid NAME=V1,V2,... (a grid) or --range NAME=LO:HI[:log] with "
        "--random N (a random search)");
  }
  if (!f.ranges.empty() && f.random <= 0) {
    throw InvalidOption("--range needs --random N (N >= 1 trials)");
  }
  // refuse bad base options before starting anything, as the trials' train will resolve them
  f.optimizer.resolve(default_rmsprop());
  std::vector<Setting> settings =
      f.grid.empty() ? random_settings(f.ranges, f.random, f.search_seed) : grid_settings(f.grid);
  const auto dir = make_run_folder(f.task.out, "tune");
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  const int jobs = f.jobs > 0 ? f.jobs : std::min<int>(cores, int(settings.size()));
  const int threads = f.task.threads > 0 ? f.task.threads : std::max(1, cores / jobs);
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::vector<Trial> trials;
  for (std::size_t k = 0; k < settings.size(); ++k) {
    char name[32];
    std::snprintf(name, sizeof name, "trial-%03zu", k);
    Trial trial;
    trial.setting = settings[k];
    trial.dir = dir / "trials" / name;
    trials.push_back(std::move(trial));
  }
  std::printf("tune: %zu trials, %d at a time, %d threads each; results in %s\n", trials.size(),
              jobs, threads, dir.c_str());
  std::fflush(stdout);
  std::size_t next = 0, running = 0, done = 0;
  while (done < trials.size()) {
    while (running < std::size_t(jobs) && next < trials.size()) {
      Trial& t = trials[next++];
      std::filesystem::create_directories(t.dir);
      std::vector<std::string> args = train_arguments(f, threads);
      args.insert(args.begin(), self);
      for (const auto& [name, value] : t.setting) args.insert(args.end(), {flag_of(name), value});
      args.insert(args.end(), {"--out", t.dir.string()});
      t.pid = spawn(args, t.dir / "train.log");
      ++running;
    }
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    for (Trial& t : trials) {
      if (t.pid != pid || t.status != -1) continue;
      t.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      if (t.status == 0) {
        std::ifstream in(t.dir / "metrics.json");
        t.result = nlohmann::json::parse(in);
      }
      --running, ++done;
      std::string text;
      for (const auto& [name, value] : t.setting) text += " " + name + "=" + value;
      std::printf(
          "[%zu/%zu]%s: %s\n", done, trials.size(), text.c_str(),
          t.status == 0
              ? ("val loss " + std::to_string(t.result["epochs"].back()["val_loss"].get<double>()))
                    .c_str()
              : ("failed: " + last_line(t.dir / "train.log")).c_str());
      std::fflush(stdout);
    }
  }
  // Results, best first (lowest final validation loss; failed trials last).
  std::vector<const Trial*> order;
  for (const Trial& t : trials) order.push_back(&t);
  auto val_loss = [](const Trial* t) {
    return t->status == 0 ? t->result["epochs"].back()["val_loss"].get<double>() : INFINITY;
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](const Trial* a, const Trial* b) { return val_loss(a) < val_loss(b); });
  std::vector<std::string> names;
  for (const auto& [name, value] : trials.front().setting) names.push_back(name);
  std::ofstream csv(dir / "tune.csv");
  for (const auto& n : names) csv << n << ",";
  csv << "val_loss,val_accuracy,test_loss,test_accuracy,status\n";
  nlohmann::json doc = {
      {"command", "tune"}, {"parameters", names}, {"trials", nlohmann::json::array()}};
  std::printf("\n");
  for (const auto& n : names) std::printf("%-12s ", n.c_str());
  std::printf("%10s %10s %10s\n", "val loss", "val acc", "test acc");
  for (const Trial* t : order) {
    nlohmann::json row;
    for (const auto& [name, value] : t->setting) {
      csv << value << ",";
      row[name] = value;
      std::printf("%-12s ", value.c_str());
    }
    if (t->status == 0) {
      const auto& last = t->result["epochs"].back();
      const auto& test = t->result["test"];
      csv << last["val_loss"].get<double>() << "," << last["val_accuracy"].get<double>() << ","
          << test["loss"].get<double>() << ","
          << (test["accuracy"].is_null() ? std::string()
                                         : std::to_string(test["accuracy"].get<double>()))
          << ",ok\n";
      row["val_loss"] = last["val_loss"], row["val_accuracy"] = last["val_accuracy"];
      row["test"] = test;
      std::printf("%10.4f %10.4f %10s\n", last["val_loss"].get<double>(),
                  last["val_accuracy"].get<double>(),
                  test["accuracy"].is_null()
                      ? "-"
                      : std::to_string(test["accuracy"].get<double>()).substr(0, 6).c_str());
    } else {
      csv << ",,,,failed\n";
      row["failed"] = last_line(t->dir / "train.log");
      std::printf("%10s\n", "failed");
    }
    doc["trials"].push_back(row);
  }
  csv.close();
  if (order.front()->status != 0)
    throw std::runtime_error("every trial failed (see trials/*/train.log)");
  std::string best;
  for (const auto& [name, value] : order.front()->setting) best += " " + name + "=" + value;
  doc["best"] = doc["trials"][0];
  write_json(dir / "tune.json", doc);
  if (f.task.plots) {
    plot({"tune", (dir / "tune.csv").string(), (dir / "tune.png").string(),
          order.front()->result["model"].get<std::string>()});
  }
  std::printf("best:%s (val loss %.4f)\nresults in %s\n", best.c_str(), val_loss(order.front()),
              dir.c_str());
}

}  // namespace

void add_tune_command(CLI::App& app) {
  auto flags = std::make_shared<TuneFlags>();
  CLI::App* cmd = app.add_subcommand(
      "tune",
      "Search optimizer options on a train task: a grid (--grid lr=1e-4,1e-3,1e-2 --grid "
      "rho=0.9,0.99) or a random search (--random 20 --range lr=1e-5:1e-1:log --range "
      "rho=0.8:0.999); trials run in parallel, each a deterministic `rmsprop train`; writes "
      "tune.csv, tune.json and a heat map (tune.png) and reports the best setting (lowest "
      "final validation loss)");
  flags->task.add_to(*cmd);
  flags->optimizer.add_to(*cmd);
  cmd->add_option("--grid", flags->grid, "Repeatable: NAME=V1,V2,... (any option; rho = alpha)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->group("Search");
  cmd->add_option("--range", flags->ranges, "Repeatable: NAME=LO:HI or NAME=LO:HI:log")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->group("Search");
  cmd->add_option("--random", flags->random, "Random search: this many trials")->group("Search");
  cmd->add_option("--search-seed", flags->search_seed, "Seed of the random search")
      ->capture_default_str()
      ->group("Search");
  cmd->add_option("--jobs", flags->jobs, "Trials at a time (0: one per core)")
      ->check(CLI::NonNegativeNumber)
      ->group("Search");
  cmd->callback([flags] { run_tune(*flags); });
}

}  // namespace rmsprop::cli
