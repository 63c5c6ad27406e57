#include "optuna_helper.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "child_process.hpp"
#include "output.hpp"

namespace rmsprop::cli {

OptunaHelper::OptunaHelper() {
  signal(SIGPIPE, SIG_IGN);  // a helper that died is an error to report, not a reason to die
  const auto [child_in, to] = cloexec_pipe();
  const auto [from, child_out] = cloexec_pipe();
  try {
    pid_ = start_child({python_interpreter(), app_script("tune_optuna.py").string()},
                       {{{child_in, STDIN_FILENO}, {child_out, STDOUT_FILENO}}, ""});
  } catch (...) {
    close(child_in), close(to), close(from), close(child_out);
    throw;
  }
  close(child_in), close(child_out);
  to_ = to, from_ = from;
}

OptunaHelper::~OptunaHelper() {
  close(to_);  // end of its requests: the helper closes the study and exits
  close(from_);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

nlohmann::json OptunaHelper::call(const std::string& op, nlohmann::json arguments) {
  arguments["op"] = op;
  const std::string line = arguments.dump() + "\n";
  for (std::size_t sent = 0; sent < line.size();) {
    const ssize_t n = write(to_, line.data() + sent, line.size() - sent);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the helper has gone: its reason follows on stderr, then EOF below
    sent += std::size_t(n);
  }
  std::size_t eol;
  while ((eol = pending_.find('\n')) == std::string::npos) {
    char buffer[65536];
    const ssize_t n = read(from_, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      throw std::runtime_error("the Optuna helper (" + app_script("tune_optuna.py").string() +
                               ", run by " + python_interpreter() + ") ended without answering '" +
                               op + "'; its error is above");
    }
    pending_.append(buffer, std::size_t(n));
  }
  nlohmann::json answer = nlohmann::json::parse(pending_.substr(0, eol), nullptr, false);
  pending_.erase(0, eol + 1);
  if (answer.is_discarded()) {
    throw std::runtime_error("the Optuna helper answered '" + op +
                             "' with a line that is not JSON");
  }
  if (answer.contains("error")) throw std::runtime_error(answer["error"].get<std::string>());
  return answer;
}

}  // namespace rmsprop::cli
