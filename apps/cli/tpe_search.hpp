// `rmsprop tune --search tpe`: Optuna's TPE sampler proposes the trials, its pruner stops the
// ones behind, and the study lives in SQLite so that `--resume` continues it after a kill.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rmsprop::cli {

struct TpeSearch {
  std::vector<std::string> train;         // `train` arguments of the task and base optimizer
  std::vector<std::string> space;         // --space NAME=V1,V2 | NAME=LO:HI[:log]
  std::int64_t epochs = 0;                // each trial's (the pruner never stops the last one)
  int trials = 0, jobs = 0, threads = 0;  // 0: from the study (resume) or the cores
  std::uint64_t seed = 1;
  std::string pruner = "median";
  std::string study;   // the SQLite file ("" = RUN/study.db)
  std::string out;     // the run folder ("" = a new one)
  std::string resume;  // a run folder or study file to continue
  bool plots = true;
};

void run_tpe_search(const TpeSearch& search);

}  // namespace rmsprop::cli
