#include "trial_pool.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "child_process.hpp"

namespace rmsprop::cli {

// The descriptor number a trial's reports arrive on, in the trial process.
constexpr int kReportDescriptor = 3;

TrialPool::~TrialPool() {
  for (const Running& r : running_) {
    kill(r.pid, SIGKILL);
    close(r.report);
    waitpid(r.pid, nullptr, 0);
  }
}

void TrialPool::start(std::size_t trial, std::vector<std::string> args,
                      const std::filesystem::path& log) {
  const auto [read_end, write_end] = cloexec_pipe();
  args.insert(args.end(), {"--report-fd", std::to_string(kReportDescriptor)});
  pid_t pid = -1;
  try {
    pid = start_child(args, {{{write_end, kReportDescriptor}}, log});
  } catch (...) {
    close(read_end), close(write_end);
    throw;
  }
  close(write_end);  // the trial holds the only writer: its end is the pipe's end of file
  running_.push_back({trial, pid, read_end, ""});
  ++unfinished_;
}

void TrialPool::read_from(std::size_t index) {
  Running& r = running_[index];
  char buffer[4096];
  const ssize_t n = read(r.report, buffer, sizeof buffer);
  if (n < 0 && errno == EINTR) return;
  if (n > 0) {
    r.pending.append(buffer, std::size_t(n));
    for (std::size_t eol; (eol = r.pending.find('\n')) != std::string::npos;) {
      Event e{r.trial, false, 0, nlohmann::json::parse(r.pending.substr(0, eol), nullptr, false)};
      r.pending.erase(0, eol + 1);
      if (e.epoch.is_object()) events_.push_back(std::move(e));
    }
    return;
  }
  // end of file: the trial has ended (or closed its reports, which it does only by ending)
  close(r.report);
  int status = 0;
  while (waitpid(r.pid, &status, 0) < 0 && errno == EINTR) {
  }
  events_.push_back({r.trial, true, exit_code(status), nullptr});
  running_.erase(running_.begin() + std::ptrdiff_t(index));
}

TrialPool::Event TrialPool::next() {
  while (events_.empty()) {
    if (unfinished_ == 0) throw std::logic_error("TrialPool::next: no trial running");
    std::vector<pollfd> fds;
    for (const Running& r : running_) fds.push_back({r.report, POLLIN, 0});
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
    }
    for (std::size_t k = fds.size(); k-- > 0;) {  // from the back: read_from may erase
      if (fds[k].revents != 0) read_from(k);
    }
  }
  Event e = std::move(events_.front());
  events_.pop_front();
  unfinished_ -= e.ended;
  return e;
}

void TrialPool::stop(std::size_t trial) {
  for (const Running& r : running_) {
    if (r.trial == trial) kill(r.pid, SIGTERM);
  }
}

std::filesystem::path trial_folder(const std::filesystem::path& run, std::size_t number) {
  char name[32];
  std::snprintf(name, sizeof name, "trial-%03zu", number);
  return run / "trials" / name;
}

TrialSlots trial_slots(int jobs_flag, int threads_flag, std::size_t trials) {
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  const int jobs =
      jobs_flag > 0
          ? jobs_flag
          : int(std::min<std::size_t>(std::size_t(cores), std::max<std::size_t>(1, trials)));
  return {jobs, threads_flag > 0 ? threads_flag : std::max(1, cores / jobs)};
}

std::string failure_line(const std::filesystem::path& log) {
  std::ifstream in(log);
  std::string line, last, error;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
    if (line.rfind("rmsprop: ", 0) == 0) error = line;
  }
  return error.empty() ? last : error;
}

}  // namespace rmsprop::cli
