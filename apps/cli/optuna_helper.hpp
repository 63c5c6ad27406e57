// The boundary between `rmsprop tune --search tpe` and Optuna: apps/tune_optuna.py, run with
// Debian's python3, answers one JSON request per line (inspect, open, ask, report, tell,
// trials) with one JSON line. Optuna owns the sampler, the pruner and the SQLite study; the
// CLI owns the options, the trial processes and the results.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <string>

namespace rmsprop::cli {

class OptunaHelper {
 public:
  OptunaHelper();  // starts the helper; throws when python3 cannot run it
  OptunaHelper(const OptunaHelper&) = delete;
  OptunaHelper& operator=(const OptunaHelper&) = delete;
  ~OptunaHelper();

  // Sends {"op": op, ...arguments} and returns the answer; an answer {"error": text} (a bad
  // study file, Optuna missing) is thrown as std::runtime_error(text).
  nlohmann::json call(const std::string& op, nlohmann::json arguments = nlohmann::json::object());

 private:
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  std::string pending_;
};

}  // namespace rmsprop::cli
