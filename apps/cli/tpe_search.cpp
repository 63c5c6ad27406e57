#include "tpe_search.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>

#include "optimizer_flags.hpp"
#include "optuna_helper.hpp"
#include "output.hpp"
#include "rmsprop/error.hpp"
#include "search_space.hpp"
#include "trial_pool.hpp"

namespace rmsprop::cli {
namespace {

using nlohmann::json;

// Holds an exclusive lock on the study file while this process works on it: a second `tune`
// on the same study is refused instead of interleaving its trials. The kernel drops the lock
// when the process dies, kill -9 included.
class StudyLock {
 public:
  StudyLock(const std::filesystem::path& path, bool create) {
    fd_ = create ? open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644)
                 : open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      throw InvalidOption("study " + path.string() + ": " +
                          (create && errno == EEXIST
                               ? "already exists (continue it with --resume " + path.string() + ")"
                               : std::string(std::strerror(errno))));
    }
    if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      close(fd_);
      throw std::runtime_error("study " + path.string() +
                               ": in use by another `rmsprop tune` (its lock is held)");
    }
  }
  StudyLock(const StudyLock&) = delete;
  StudyLock& operator=(const StudyLock&) = delete;
  ~StudyLock() { close(fd_); }

 private:
  int fd_ = -1;
};

std::string value_text(const json& v) {
  return v.is_number() ? number_text(v.get<double>()) : v.get<std::string>();
}

std::string short_text(const json& v) {
  if (!v.is_number()) return v.get<std::string>();
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", v.get<double>());
  return text;
}

json space_json(const std::vector<std::string>& specs) {
  json out = json::array();
  for (const std::string& spec : specs) {
    const Dimension d = parse_dimension(spec, "--space");
    if (d.is_range()) {
      out.push_back({{"name", d.name}, {"low", d.lo}, {"high", d.hi}, {"log", d.log}});
    } else {
      out.push_back({{"name", d.name}, {"choices", d.choices}});
    }
  }
  return out;
}

// Runs trials until `trials` of them have ended (finished, pruned or failed).
void run_trials(OptunaHelper& helper, const TpeSearch& s, const json& config,
                const std::filesystem::path& dir, std::int64_t finished, int jobs, int threads) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const auto epochs = config["epochs"].get<std::int64_t>();
  TrialPool pool;
  std::map<std::size_t, json> params;                       // of the running trials
  std::map<std::size_t, std::int64_t> pruned_at, reported;  // epochs
  while (true) {
    while (int(pool.running()) < jobs && finished + std::int64_t(pool.running()) < s.trials) {
      const json asked = helper.call("ask");
      const auto number = asked["trial"].get<std::size_t>();
      std::vector<std::string> args = {self};
      for (const auto& a : config["train"]) args.push_back(a.get<std::string>());
      for (const auto& [name, value] : asked["params"].items()) {
        args.insert(args.end(), {flag_of(name), value_text(value)});
      }
      const auto folder = trial_folder(dir, number);
      std::filesystem::create_directories(folder);
      args.insert(args.end(), {"--threads", std::to_string(threads), "--out", folder.string()});
      pool.start(number, args, folder / "train.log");
      params[number] = asked["params"];
    }
    if (pool.running() == 0) break;
    const TrialPool::Event e = pool.next();
    if (!e.ended) {
      // A pruned trial's later epochs (reported before the signal reached it) are not part of
      // the study: what it holds does not depend on how fast a trial runs.
      if (pruned_at.count(e.trial)) continue;
      const auto epoch = e.epoch["epoch"].get<std::int64_t>();
      reported[e.trial] = epoch;
      const bool prune =
          helper
              .call("report",
                    {{"trial", e.trial}, {"epoch", epoch}, {"value", e.epoch["val_loss"]}})["prune"]
              .get<bool>();
      if (prune && epoch < epochs) {
        pruned_at[e.trial] = epoch;
        pool.stop(e.trial);
      }
      continue;
    }
    std::string text;
    for (const auto& [name, value] : params[e.trial].items()) {
      text += " " + name + "=" + short_text(value);
    }
    const auto folder = trial_folder(dir, e.trial);
    json tell = {{"trial", e.trial}};
    if (pruned_at.count(e.trial)) {
      tell["state"] = "pruned";
      text += ": pruned after epoch " + std::to_string(pruned_at[e.trial]);
    } else if (e.exit_code == 0) {
      std::ifstream in(folder / "metrics.json");
      const double loss = json::parse(in)["epochs"].back()["val_loss"].get<double>();
      tell["state"] = "complete", tell["value"] = loss;
      char shown[32];
      std::snprintf(shown, sizeof shown, ": val loss %.6g", loss);
      text += shown;
    } else {
      // A run that ended badly after reporting epochs (the loss rose above the untrained
      // model's, or went non-finite) has diverged: a result the sampler must learn from.
      tell["state"] = reported[e.trial] ? "diverged" : "failed";
      tell["failure"] = failure_line(folder / "train.log");
      text += ": " + tell["state"].get<std::string>() + ": " + tell["failure"].get<std::string>();
    }
    helper.call("tell", tell);
    params.erase(e.trial), reported.erase(e.trial), pruned_at.erase(e.trial);
    std::printf("[%lld/%d] trial %zu%s\n", static_cast<long long>(++finished), s.trials, e.trial,
                text.c_str());
    std::fflush(stdout);
  }
}

// tune.csv and tune.json from every trial of the study, best first: finished trials by their
// final validation loss, then pruned ones by their last, then failed and interrupted ones.
json write_results(OptunaHelper& helper, const std::filesystem::path& dir,
                   const std::filesystem::path& study, const json& config) {
  json trials = helper.call("trials")["trials"];
  std::vector<std::string> names;
  for (const auto& d : space_json(config["space"].get<std::vector<std::string>>())) {
    names.push_back(d["name"].get<std::string>());
  }
  static const std::map<std::string, int> rank = {{"complete", 0},    {"pruned", 1},
                                                  {"diverged", 2},    {"failed", 3},
                                                  {"interrupted", 4}, {"running", 5}};
  std::vector<json> rows;
  for (json& t : trials) {
    json row = {{"trial", t["trial"]}, {"state", t["state"]}};
    for (const auto& n : names) row[n] = t["params"].contains(n) ? value_text(t["params"][n]) : "";
    json curve = json::array();
    for (const auto& [epoch, loss] : t["epochs"].items()) curve.push_back(loss);
    row["val_losses"] = curve;
    if (t["state"] == "complete") {
      std::ifstream in(trial_folder(dir, t["trial"].get<std::size_t>()) / "metrics.json");
      const json m = json::parse(in, nullptr, false);
      row["val_loss"] = t["value"];
      if (!m.is_discarded()) {
        row["val_accuracy"] = m["epochs"].back()["val_accuracy"];
        row["test"] = m["test"];
        row["model"] = m["model"];
      }
    } else if ((t["state"] == "pruned" || t["state"] == "diverged") && !curve.empty()) {
      row["val_loss"] = curve.back();
    }
    if (!t["failure"].is_null()) row["failed"] = t["failure"];
    rows.push_back(row);
  }
  auto key = [&](const json& r) {
    const double loss = r.contains("val_loss") && r["val_loss"].is_number()
                            ? r["val_loss"].get<double>()
                            : INFINITY;
    return std::make_tuple(rank.at(r["state"].get<std::string>()), loss,
                           r["trial"].get<std::int64_t>());
  };
  std::stable_sort(rows.begin(), rows.end(),
                   [&](const json& a, const json& b) { return key(a) < key(b); });
  std::ofstream csv(dir / "tune.csv");
  csv << "trial,";
  for (const auto& n : names) csv << n << ",";
  csv << "state,epochs,val_loss,val_accuracy,test_loss,test_accuracy\n";
  auto cell = [](const json& v) { return v.is_number() ? number_text(v.get<double>()) : ""; };
  for (const json& r : rows) {
    csv << r["trial"].get<std::int64_t>() << ",";
    for (const auto& n : names) csv << r[n].get<std::string>() << ",";
    const json none;
    const json& test = r.contains("test") ? r["test"] : none;
    csv << r["state"].get<std::string>() << "," << r["val_losses"].size() << ","
        << cell(r.value("val_loss", none)) << "," << cell(r.value("val_accuracy", none)) << ","
        << cell(test.is_object() ? test["loss"] : none) << ","
        << cell(test.is_object() ? test["accuracy"] : none) << "\n";
  }
  json doc = {{"command", "tune"},   {"search", "tpe"}, {"study", study.string()},
              {"parameters", names}, {"trials", rows},  {"config", config}};
  if (!rows.empty() && rows.front()["state"] == "complete") doc["best"] = rows.front();
  write_json(dir / "tune.json", doc);
  return doc;
}

}  // namespace

void run_tpe_search(const TpeSearch& s) {
  // Every check that can refuse the command comes before the study is created or opened.
  std::filesystem::path dir, study;
  json config;
  const bool resume = !s.resume.empty();
  if (resume) {
    std::error_code ec;
    const bool folder = std::filesystem::is_directory(s.resume, ec);
    study = folder ? std::filesystem::path(s.resume) / "study.db" : std::filesystem::path(s.resume);
    if (!std::filesystem::exists(study, ec)) {
      throw InvalidOption(
          "--resume " + s.resume + ": " +
          (folder ? "no study.db in this folder (give the study file)" : "no such file or folder"));
    }
    study = std::filesystem::absolute(study);
  } else {
    space_json(s.space);  // refuses a bad --space before anything is made
    if (s.trials < 1) throw InvalidOption("--trials " + std::to_string(s.trials) + ": need >= 1");
    if (!s.study.empty()) {
      study = std::filesystem::absolute(s.study);
      if (std::filesystem::exists(study)) {
        throw InvalidOption("--study " + s.study +
                            ": already exists (continue its study with "
                            "--resume " +
                            s.study + ")");
      }
    }
    dir = std::filesystem::absolute(make_run_folder(s.out, "tune"));
    if (study.empty()) study = dir / "study.db";
  }
  const StudyLock lock(study, !resume);
  OptunaHelper helper;
  if (resume) {
    config = helper.call("inspect", {{"study", study.string()}})["config"];
    space_json(config["space"].get<std::vector<std::string>>());  // still valid options?
    dir = std::filesystem::is_directory(s.resume) ? std::filesystem::absolute(s.resume)
                                                  : std::filesystem::path(config["folder"]);
  } else {
    config = {{"version", 1},       {"train", s.train},      {"space", s.space},
              {"epochs", s.epochs}, {"trials", s.trials},    {"seed", s.seed},
              {"pruner", s.pruner}, {"folder", dir.string()}};
  }
  TpeSearch run = s;
  if (run.trials == 0) run.trials = config["trials"].get<int>();
  config["trials"] = run.trials;  // a resume's --trials, for the next resume
  std::filesystem::create_directories(dir);
  const auto [jobs, threads] = trial_slots(s.jobs, s.threads, std::size_t(run.trials));
  json opened;
  try {
    opened = helper.call("open", {{"study", study.string()},
                                  {"create", !resume},
                                  {"config", config},
                                  {"space", space_json(config["space"])},
                                  {"seed", config["seed"]},
                                  {"jobs", jobs},
                                  {"pruner", config["pruner"]}});
  } catch (...) {
    if (!resume) std::filesystem::remove(study);  // the empty file made for the lock
    throw;
  }
  const auto finished = opened["finished"].get<std::int64_t>();
  if (resume) {
    std::printf("tune: resuming %s: %lld of %d trials ended before", study.c_str(),
                static_cast<long long>(finished), run.trials);
    if (!opened["interrupted"].empty()) {
      std::printf("; interrupted trials %s run again", opened["interrupted"].dump().c_str());
    }
    std::printf("\n");
  } else {
    std::printf("tune: TPE search, %d trials, %d at a time, %d threads each, %s pruner; study %s\n",
                run.trials, jobs, threads, config["pruner"].get<std::string>().c_str(),
                study.c_str());
  }
  std::fflush(stdout);
  run_trials(helper, run, config, dir, finished, jobs, threads);
  const json doc = write_results(helper, dir, study, config);
  if (!doc.contains("best")) {
    throw std::runtime_error("no trial finished (see " + (dir / "trials").string() +
                             "/*/train.log)");
  }
  if (s.plots) plot({"study", (dir / "tune.json").string(), dir.string()});
  std::string best;
  for (const auto& n : doc["parameters"])
    best += " " + n.get<std::string>() + "=" + doc["best"][n.get<std::string>()].get<std::string>();
  std::size_t pruned = 0;
  for (const auto& t : doc["trials"]) pruned += t["state"] == "pruned";
  std::printf("best:%s (val loss %.4f, trial %lld); %zu of %zu trials pruned\nresults in %s\n",
              best.c_str(), doc["best"]["val_loss"].get<double>(),
              static_cast<long long>(doc["best"]["trial"].get<std::int64_t>()), pruned,
              doc["trials"].size(), dir.c_str());
}

}  // namespace rmsprop::cli
