// A one-line progress bar on stderr for anything that runs longer than a second.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace rmsprop::cli {

class Progress {
 public:
  // Shown only when `enabled` (the CLI's default: stderr is a terminal), and only once the
  // work has run for a second; redrawn at most ten times a second.
  Progress(std::string label, std::int64_t total, bool enabled);
  ~Progress() { finish(); }
  void update(std::int64_t done, const std::string& status = "");
  void finish();  // erases the bar

 private:
  std::string label_;
  std::int64_t total_;
  bool enabled_, drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

// True when stderr is a terminal.
bool stderr_is_terminal();

}  // namespace rmsprop::cli
