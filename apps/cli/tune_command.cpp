// rmsprop tune: a grid, random or TPE (tpe_search.cpp) search over optimizer options on a
// `train` task. Each trial is its own `rmsprop train` process (libtorch's seeds and thread pool
// are per process, so trials run side by side and stay deterministic), `--jobs` at a time.

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>

#include "commands.hpp"
#include "optimizer_flags.hpp"
#include "output.hpp"
#include "rmsprop/error.hpp"
#include "search_space.hpp"
#include "task_flags.hpp"
#include "tpe_search.hpp"
#include "trial_pool.hpp"

namespace rmsprop::cli {
namespace {

struct TuneFlags {
  TaskFlags task;
  OptimizerFlags optimizer;
  std::vector<std::string> grid, space, ranges;  // --range: --space's older name
  std::string search, pruner = "median", study, resume;
  int random = 0, trials = 0, jobs = 0;
  std::uint64_t search_seed = 1;
};

using Setting = std::vector<std::pair<std::string, std::string>>;  // option name, value text

std::vector<Setting> grid_settings(const std::vector<std::string>& specs) {
  std::vector<Setting> out = {{}};
  for (const std::string& spec : specs) {
    const Dimension d = parse_dimension(spec, "--grid");
    if (d.is_range()) {
      throw InvalidOption("--grid '" + spec + "': a grid takes a list (NAME=V1,V2,...); " +
                          "search a range with --random N or --search tpe");
    }
    std::vector<Setting> next;
    for (const Setting& s : out) {
      for (const std::string& v : d.choices) {
        Setting t = s;
        t.emplace_back(d.name, v);
        next.push_back(t);
      }
    }
    out = next;
  }
  return out;
}

// Ranges uniform (in log(value) for :log), lists one value each with equal chance.
std::vector<Setting> random_settings(const std::vector<std::string>& specs, int count,
                                     std::uint64_t seed) {
  std::vector<Dimension> dims;
  for (const std::string& spec : specs) dims.push_back(parse_dimension(spec, "--range"));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<Setting> out;
  for (int k = 0; k < count; ++k) {
    Setting s;
    for (const Dimension& d : dims) {
      const double u = unit(rng);
      if (!d.is_range()) {
        s.emplace_back(
            d.name,
            d.choices[std::min(d.choices.size() - 1, std::size_t(u * double(d.choices.size())))]);
        continue;
      }
      const double v = d.log ? std::exp(std::log(d.lo) + u * (std::log(d.hi) - std::log(d.lo)))
                             : d.lo + u * (d.hi - d.lo);
      char text[32];
      std::snprintf(text, sizeof text, "%.4g", v);
      s.emplace_back(d.name, text);
    }
    out.push_back(s);
  }
  return out;
}

// The `rmsprop train` arguments that reproduce the task and the base optimizer.
std::vector<std::string> train_arguments(const TuneFlags& f) {
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
  int status = -1;
  nlohmann::json result;  // metrics.json when it finished
};

// The search the flags ask for: --search, else the one --grid or --random implies.
std::string search_kind(const TuneFlags& f) {
  if (!f.search.empty()) return f.search;
  if (!f.grid.empty()) return "grid";
  if (f.random > 0 || !f.space.empty()) return "random";
  throw InvalidOption(
      "give --grid NAME=V1,V2,... (a grid), --random N with --range NAME=LO:HI[:log] (a random "
      "search) or --search tpe --trials N with --space NAME=LO:HI[:log] (a TPE search)");
}

void run_tune(TuneFlags& f, const CLI::App& cmd) {
  f.space.insert(f.space.end(), f.ranges.begin(), f.ranges.end());
  if (!f.resume.empty()) {
    for (const CLI::Option* o : cmd.get_options()) {
      static const std::set<std::string> allowed = {"--resume",  "--trials",   "--jobs",
                                                    "--threads", "--no-plots", "--search"};
      const std::string name = o->get_lnames().empty() ? "" : "--" + o->get_lnames().front();
      if (o->count() > 0 && !allowed.count(name)) {
        throw InvalidOption("--resume " + f.resume + " continues its study as it was set up; " +
                            name +
                            " cannot be changed (only --trials, --jobs, --threads, --no-plots)");
      }
    }
    f.search = "tpe";
  }
  const std::string search = search_kind(f);
  if (search == "tpe") {
    if (!f.grid.empty() || f.random > 0) {
      throw InvalidOption("--search tpe takes its space from --space, its count from --trials");
    }
    TpeSearch s;
    if (f.resume.empty()) {
      if (f.space.empty()) throw InvalidOption("--search tpe needs --space NAME=LO:HI[:log] ...");
      if (f.trials < 1) throw InvalidOption("--search tpe needs --trials N (N >= 1)");
      if (!(f.task.val_fraction > 0)) {
        throw InvalidOption("--search tpe minimizes the validation loss: --val-fraction " +
                            number_text(f.task.val_fraction) + " holds none out");
      }
      f.optimizer.resolve(default_rmsprop());  // refuse bad base options before the study
      s.train = train_arguments(f);
    }
    s.space = f.space;
    s.epochs = f.task.epochs;
    s.trials = f.trials, s.jobs = f.jobs, s.threads = f.task.threads;
    s.seed = f.search_seed, s.pruner = f.pruner;
    s.study = f.study, s.out = f.task.out, s.resume = f.resume, s.plots = f.task.plots;
    run_tpe_search(s);
    return;
  }
  if (!f.study.empty() || (f.trials > 0 && search == "grid")) {
    throw InvalidOption(std::string(f.study.empty() ? "--trials" : "--study") +
                        " belongs to --search tpe (a " + search + " search has no study)");
  }
  if (search == "grid" && (!f.space.empty() || f.random > 0)) {
    throw InvalidOption("a grid search takes --grid only (not --range/--space or --random)");
  }
  if (search == "random" && !f.grid.empty()) {
    throw InvalidOption("a random search takes --range (or --space), not --grid");
  }
  const int count = f.random > 0 ? f.random : f.trials;
  if (search == "random" && count <= 0) {
    throw InvalidOption("--range needs --random N (N >= 1 trials)");
  }
  if (search == "random" && f.space.empty()) {
    throw InvalidOption("--random N needs --range NAME=LO:HI[:log] (what to search)");
  }
  // refuse bad base options before starting anything, as the trials' train will resolve them
  f.optimizer.resolve(default_rmsprop());
  std::vector<Setting> settings =
      search == "grid" ? grid_settings(f.grid) : random_settings(f.space, count, f.search_seed);
  const auto dir = make_run_folder(f.task.out, "tune");
  const auto [jobs, threads] = trial_slots(f.jobs, f.task.threads, settings.size());
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::vector<Trial> trials;
  for (std::size_t k = 0; k < settings.size(); ++k) {
    Trial trial;
    trial.setting = settings[k];
    trial.dir = trial_folder(dir, k);
    trials.push_back(std::move(trial));
  }
  std::printf("tune: %zu trials, %d at a time, %d threads each; results in %s\n", trials.size(),
              jobs, threads, dir.c_str());
  std::fflush(stdout);
  TrialPool pool;
  std::size_t next = 0, done = 0;
  while (done < trials.size()) {
    while (pool.running() < std::size_t(jobs) && next < trials.size()) {
      Trial& t = trials[next];
      std::filesystem::create_directories(t.dir);
      std::vector<std::string> args = train_arguments(f);
      args.insert(args.begin(), self);
      for (const auto& [name, value] : t.setting) args.insert(args.end(), {flag_of(name), value});
      args.insert(args.end(), {"--threads", std::to_string(threads), "--out", t.dir.string()});
      pool.start(next++, args, t.dir / "train.log");
    }
    const TrialPool::Event e = pool.next();
    if (!e.ended) continue;  // epochs matter to the TPE search's pruner only
    Trial& t = trials[e.trial];
    t.status = e.exit_code;
    if (t.status == 0) {
      std::ifstream in(t.dir / "metrics.json");
      t.result = nlohmann::json::parse(in);
    }
    ++done;
    std::string text;
    for (const auto& [name, value] : t.setting) text += " " + name + "=" + value;
    std::printf(
        "[%zu/%zu]%s: %s\n", done, trials.size(), text.c_str(),
        t.status == 0
            ? ("val loss " + std::to_string(t.result["epochs"].back()["val_loss"].get<double>()))
                  .c_str()
            : ("failed: " + failure_line(t.dir / "train.log")).c_str());
    std::fflush(stdout);
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
      row["failed"] = failure_line(t->dir / "train.log");
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
      "rho=0.9,0.99), a random search (--random 20 --range lr=1e-5:1e-1:log) or a Bayesian "
      "one (--search tpe --trials 30 --space lr=1e-5:1e-1:log --space rho=0.8:0.999 --space "
      "centered=true,false: Optuna's TPE with a median pruner, the study in SQLite, "
      "--resume DIR after an interruption); trials run in parallel, each a deterministic "
      "`rmsprop train`; writes tune.csv, tune.json and plots and reports the best setting "
      "(lowest final validation loss)");
  flags->task.add_to(*cmd);
  flags->optimizer.add_to(*cmd);
  cmd->add_option("--grid", flags->grid, "Repeatable: NAME=V1,V2,... (any option; rho = alpha)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->group("Search");
  cmd->add_option("--search", flags->search,
                  "grid, random or tpe (default: what --grid or --random imply)")
      ->check(CLI::IsMember({"grid", "random", "tpe"}))
      ->group("Search");
  cmd->add_option("--space", flags->space,
                  "Repeatable: NAME=LO:HI, NAME=LO:HI:log (numbers) or NAME=V1,V2,... (any option)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->group("Search");
  cmd->add_option("--range", flags->ranges, "Repeatable: the same as --space")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->group("Search");
  cmd->add_option("--random", flags->random, "Random search: this many trials")->group("Search");
  cmd->add_option("--trials", flags->trials,
                  "TPE (or random) search: this many trials that end (finished, pruned or failed)")
      ->check(CLI::NonNegativeNumber)
      ->group("Search");
  cmd->add_option("--search-seed", flags->search_seed,
                  "Seed of the random search and of the TPE sampler (--seed is the trials')")
      ->capture_default_str()
      ->group("Search");
  cmd->add_option("--pruner", flags->pruner,
                  "TPE search: median (Optuna's MedianPruner: stop a trial whose validation loss "
                  "is worse than the median of earlier trials at the same epoch, after 5 "
                  "trials), halving (successive halving) or none")
      ->check(CLI::IsMember({"median", "halving", "none"}))
      ->capture_default_str()
      ->group("Search");
  cmd->add_option("--study", flags->study,
                  "TPE search: the SQLite file of the study (default RUN/study.db; must not exist)")
      ->group("Search");
  cmd->add_option("--resume", flags->resume,
                  "Continue the TPE study of this run folder (or study file) after an "
                  "interruption: trials that ended are kept, interrupted ones run again")
      ->group("Search");
  cmd->add_option("--jobs", flags->jobs, "Trials at a time (0: one per core)")
      ->check(CLI::NonNegativeNumber)
      ->group("Search");
  cmd->callback([flags, cmd] { run_tune(*flags, *cmd); });
}

}  // namespace rmsprop::cli
