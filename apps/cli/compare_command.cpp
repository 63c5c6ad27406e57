#include <cstdio>
#include <memory>

#include "commands.hpp"
#include "optimizer_flags.hpp"
#include "output.hpp"
#include "rmsprop/error.hpp"
#include "task_flags.hpp"

namespace rmsprop::cli {

namespace {

struct Contender {
  std::string name;  // as plotted
  Options options;
};

// The optimizers a spec names: "NAME" or "NAME:option=value:option=value".
Contender contender(const std::string& spec) {
  const auto colon = spec.find(':');
  const std::string key = spec.substr(0, colon);
  Contender c;
  if (key == "sgd") {
    c = {"SGD", Options::sgd(1e-2)};
  } else if (key == "sgd-momentum") {
    c = {"SGD+momentum", Options::sgd(1e-2, 0.9)};
  } else if (key == "adagrad") {
    c = {"AdaGrad", Options::adagrad(1e-2)};
  } else if (key == "rmsprop") {
    c = {"RMSProp", default_rmsprop()};
  } else if (key == "centered") {
    c = {"centered RMSProp", default_rmsprop()};
    c.options.centered = true;
  } else if (key == "rmsprop-momentum") {
    c = {"RMSProp+momentum", default_rmsprop()};
    c.options.momentum = 0.9;
  } else if (key == "adam") {
    c = {"Adam", Options::adam(1e-3)};
  } else {
    throw InvalidOption("--optimizer '" + key +
                        "': use sgd, sgd-momentum, adagrad, rmsprop, centered, rmsprop-momentum "
                        "or adam (then :option=value...)");
  }
  for (std::size_t at = colon; at != std::string::npos;) {
    const std::size_t next = spec.find(':', at + 1);
    const std::string pair = spec.substr(at + 1, next == std::string::npos ? next : next - at - 1);
    const auto eq = pair.find('=');
    if (eq == std::string::npos) {
      throw InvalidOption("--optimizer " + spec + ": '" + pair + "' is not option=value");
    }
    c.options.set(pair.substr(0, eq), pair.substr(eq + 1));
    c.name += " " + pair;
    at = next;
  }
  c.options.validate();
  return c;
}

struct CompareFlags {
  TaskFlags task;
  std::vector<std::string> optimizers = {"sgd",      "sgd-momentum",     "adagrad", "rmsprop",
                                         "centered", "rmsprop-momentum", "adam"};
};

void run_compare(CompareFlags& f) {
  std::vector<Contender> contenders;
  for (const std::string& spec : f.optimizers) contenders.push_back(contender(spec));
  const auto dir = make_run_folder(f.task.out, "compare");
  const Dataset data = f.task.load();
  const bool classify = data.classes > 0;
  std::vector<std::pair<std::string, TrainResult>> runs;
  nlohmann::json doc = {
      {"command", "compare"}, {"dataset", to_json(data)}, {"runs", nlohmann::json::array()}};
  for (const Contender& c : contenders) {
    TrainSettings s = f.task.settings();
    s.options = c.options;
    s.label = c.name;
    std::printf("== %s\n", c.name.c_str());
    std::fflush(stdout);
    runs.emplace_back(c.name, train(s, data, stdout));
    nlohmann::json run = to_json(runs.back().second);
    run["optimizer"] = c.name;
    for (const auto& [name, value] : c.options.to_pairs()) run["options"][name] = value;
    doc["runs"].push_back(run);
    doc["settings"] = {{"epochs", s.epochs},
                       {"batch_size", s.batch_size},
                       {"seed", s.seed},
                       {"threads", s.threads},
                       {"model", runs.back().second.model}};
  }
  write_json(dir / "compare.json", doc);
  write_epochs_csv(dir / "compare.csv", runs, classify);
  if (f.task.plots) {
    plot({"compare", (dir / "compare.csv").string(), (dir / "compare.png").string(),
          runs.front().second.model + " on " + data.name});
  }
  std::printf("\n%-28s %10s %10s %10s %10s %9s\n", "optimizer", "val loss", "val acc", "test loss",
              "test acc", "s/epoch");
  for (const auto& [name, r] : runs) {
    const EpochRecord& last = r.epochs.back();
    double seconds = 0;
    for (const EpochRecord& e : r.epochs) seconds += e.seconds;
    std::printf("%-28s %10.4f %10s %10.4f %10s %9.2f\n", name.c_str(), last.val_loss,
                classify ? std::to_string(last.val_accuracy).substr(0, 6).c_str() : "-",
                *r.test_loss,
                classify ? std::to_string(*r.test_accuracy).substr(0, 6).c_str() : "-",
                seconds / double(r.epochs.size()));
  }
  std::printf("results in %s\n", dir.c_str());
}

}  // namespace

void add_compare_command(CLI::App& app) {
  auto flags = std::make_shared<CompareFlags>();
  CLI::App* cmd = app.add_subcommand(
      "compare",
      "Train the same task, from the same seed, under several optimizers; writes compare.json, "
      "compare.csv, compare.png (every optimizer's curves) and prints a table of final metrics");
  flags->task.add_to(*cmd);
  cmd->add_option("--optimizer", flags->optimizers,
                  "Repeatable: sgd, sgd-momentum, adagrad, rmsprop, centered, rmsprop-momentum, "
                  "adam, each optionally with :option=value overrides (e.g. adam:lr=0.01)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->capture_default_str()
      ->group("Optimizer");
  cmd->callback([flags] { run_compare(*flags); });
}

}  // namespace rmsprop::cli
