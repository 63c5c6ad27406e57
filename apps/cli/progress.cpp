#include "progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace rmsprop::cli {

bool stderr_is_terminal() {
  return isatty(STDERR_FILENO) != 0;
}

Progress::Progress(std::string label, std::int64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

void Progress::update(std::int64_t done, const std::string& status) {
  if (!enabled_ || total_ <= 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - start_ < std::chrono::seconds(1) ||
      (drawn_ && now - last_ < std::chrono::milliseconds(100))) {
    return;
  }
  last_ = now;
  drawn_ = true;
  constexpr int kWidth = 30;
  const double fraction = double(done) / double(total_);
  const int filled = int(fraction * kWidth);
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double eta = fraction > 0 ? elapsed * (1 - fraction) / fraction : 0;
  std::fprintf(stderr, "\r%s [%s%s] %3d%% %lld/%lld %.0fs left %s\033[K", label_.c_str(),
               std::string(std::size_t(filled), '#').c_str(),
               std::string(std::size_t(kWidth - filled), '.').c_str(), int(100 * fraction),
               static_cast<long long>(done), static_cast<long long>(total_), eta, status.c_str());
  std::fflush(stderr);
}

void Progress::finish() {
  if (!drawn_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace rmsprop::cli
