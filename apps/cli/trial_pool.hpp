// The trials of `rmsprop tune` running side by side: each its own `rmsprop train` process,
// its output in the trial folder's train.log, its epochs reported on a pipe (--report-fd).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <deque>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace rmsprop::cli {

class TrialPool {
 public:
  struct Event {
    std::size_t trial = 0;
    bool ended = false;    // false: an epoch report
    int exit_code = 0;     // ended: 0 finished, else the code or 128 + signal
    nlohmann::json epoch;  // a report: {"epoch", "train_loss", "val_loss", "val_accuracy"}
  };

  TrialPool() = default;
  TrialPool(const TrialPool&) = delete;
  TrialPool& operator=(const TrialPool&) = delete;
  ~TrialPool();  // stops the trials still running

  // Starts `train_args` (argv of `rmsprop train`, argv[0] the binary) as trial `trial`; its
  // output goes to `log`.
  void start(std::size_t trial, std::vector<std::string> train_args,
             const std::filesystem::path& log);
  // Waits for the next epoch report or end of a trial; running() must be > 0.
  Event next();
  // Ends a trial early (SIGTERM); its end still comes as an Event.
  void stop(std::size_t trial);
  // Trials started whose end next() has not yet returned. Counting the processes alone would
  // miss a trial whose end is read but still queued (two trials ending in one poll): the
  // caller would start one trial too many.
  std::size_t running() const { return unfinished_; }

 private:
  struct Running {
    std::size_t trial;
    pid_t pid;
    int report;           // read end of the trial's --report-fd pipe
    std::string pending;  // a report line not yet ended by '\n'
  };
  void read_from(std::size_t index);

  std::vector<Running> running_;
  std::deque<Event> events_;
  std::size_t unfinished_ = 0;
};

// trials/trial-NNN in a run folder: trial `number`'s own folder.
std::filesystem::path trial_folder(const std::filesystem::path& run, std::size_t number);

// Trials at a time and threads per trial: the flags when given (> 0), else one trial per core
// (at most `trials`) and the cores shared among them.
struct TrialSlots {
  int jobs, threads;
};
TrialSlots trial_slots(int jobs_flag, int threads_flag, std::size_t trials);

// Why a trial failed, from its train.log: the CLI's error line ("rmsprop: ..."; stderr is
// unbuffered, so it may come before stdout's last lines), else the last line.
std::string failure_line(const std::filesystem::path& log);

}  // namespace rmsprop::cli
