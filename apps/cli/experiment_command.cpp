#include <cstdio>
#include <memory>

#include "commands.hpp"
#include "experiments/experiment.hpp"
#include "output.hpp"
#include "rmsprop/error.hpp"

namespace rmsprop::cli {
namespace {

struct ExperimentFlags {
  std::string name, out;
  bool plots = true, list = false;
};

void run_experiment(const ExperimentFlags& f) {
  if (f.list || f.name.empty()) {
    for (const Experiment& e : experiments())
      std::printf("%-17s %s\n", e.name.c_str(), e.claim.c_str());
    return;
  }
  const Experiment* found = nullptr;
  std::string names;
  for (const Experiment& e : experiments()) {
    if (e.name == f.name) found = &e;
    names += " " + e.name;
  }
  if (!found) throw InvalidOption("experiment '" + f.name + "': known are" + names);
  const auto dir = make_run_folder(f.out, "experiment-" + f.name);
  std::printf("%s: %s\n", found->name.c_str(), found->claim.c_str());
  const ExperimentOutput out = found->run(dir, f.plots);
  for (const std::string& line : out.lines) std::printf("  %s\n", line.c_str());
  std::printf("finding holds: %s\nresults in %s\n", out.holds ? "yes" : "NO", dir.c_str());
  write_json(dir / "findings.json", {{"experiment", found->name},
                                     {"claim", found->claim},
                                     {"holds", out.holds},
                                     {"findings", out.findings}});
}

}  // namespace

void add_experiment_command(CLI::App& app) {
  auto flags = std::make_shared<ExperimentFlags>();
  std::string names;
  for (const Experiment& e : experiments()) names += (names.empty() ? "" : ", ") + e.name;
  CLI::App* cmd = app.add_subcommand(
      "experiment",
      "Run one of the seeds' experiments (" + names +
          "): prints its findings and whether the claim held, writes findings.json, its data "
          "(CSV) and a plot (PNG)");
  cmd->add_option("name", flags->name, "The experiment (see --list)");
  cmd->add_flag("--list", flags->list, "List the experiments and their claims");
  cmd->add_option("--out", flags->out, "Run folder (default: a new one under runs/)");
  cmd->add_flag("!--no-plots", flags->plots, "Write no PNG plot");
  cmd->callback([flags] { run_experiment(*flags); });
}

}  // namespace rmsprop::cli
