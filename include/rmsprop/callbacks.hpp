// Callbacks for rmsprop::minimize (see minimize.hpp for the hooks). They compose: pass any
// number, in the order their hooks should run.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "rmsprop/error.hpp"
#include "rmsprop/minimize.hpp"

namespace rmsprop::callbacks {

// Prints "iteration N: objective F" every `every` objectives to `out`.
class PrintLoss {
 public:
  explicit PrintLoss(std::size_t every = 100, std::FILE* out = stdout) : every_(every), out_(out) {
    if (every == 0) throw InvalidArgument("PrintLoss: every 0: must be >= 1");
  }
  template <class T>
  void Evaluate(const MinimizeState<T>& s, double f) {
    if (s.iteration % every_ == 0) {
      std::fprintf(out_, "iteration %zu: objective %.10g\n", s.iteration, f);
    }
  }

 private:
  std::size_t every_;
  std::FILE* out_;
};

// A one-line progress bar over `max_iterations` steps on `out` (stderr), redrawn at most ten
// times a second, erased at the end.
class ProgressBar {
 public:
  explicit ProgressBar(std::size_t max_iterations, std::FILE* out = stderr)
      : total_(max_iterations), out_(out) {}
  template <class T>
  void StepTaken(const MinimizeState<T>& s) {
    const auto now = std::chrono::steady_clock::now();
    if (total_ == 0 || (drawn_ && now - last_ < std::chrono::milliseconds(100))) return;
    last_ = now;
    drawn_ = true;
    const int filled = int(30.0 * double(std::min(s.iteration, total_)) / double(total_));
    std::fprintf(out_, "\r[%s%s] %zu/%zu objective %.6g\033[K",
                 std::string(std::size_t(filled), '#').c_str(),
                 std::string(std::size_t(30 - filled), '.').c_str(), s.iteration, total_,
                 s.objective);
    std::fflush(out_);
  }
  template <class T>
  void EndOptimization(const MinimizeState<T>&) {
    if (drawn_) std::fprintf(out_, "\r\033[K");
  }

 private:
  std::size_t total_;
  std::FILE* out_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_{};
};

// Stops when the objective (per epoch for separable functions, else per step) has not improved
// on its minimum for `patience` consecutive checks.
class EarlyStopAtMinLoss {
 public:
  explicit EarlyStopAtMinLoss(std::size_t patience = 10) : patience_(patience) {}
  template <class T>
  bool EndEpoch(const MinimizeState<T>&, double f) {
    return update(f);
  }
  template <class T>
  bool Evaluate(const MinimizeState<T>& s, double f) {
    return s.epoch == 0 && update(f);  // non-separable: every objective is a check
  }
  double best() const { return best_; }

 private:
  bool update(double f) {
    if (f < best_) {
      best_ = f;
      since_ = 0;
      return false;
    }
    return ++since_ >= patience_;
  }
  std::size_t patience_, since_ = 0;
  double best_ = std::numeric_limits<double>::infinity();
};

// Keeps the coordinates at which the lowest objective was evaluated.
template <class T>
class StoreBestCoordinates {
 public:
  void Evaluate(const MinimizeState<T>& s, double f) {
    if (f < best_) {
      best_ = f;
      coordinates_.clear();  // several buffers: one after the other
      for (const auto& block : s.blocks)
        coordinates_.insert(coordinates_.end(), block.begin(), block.end());
    }
  }
  double best_objective() const { return best_; }
  const std::vector<T>& best_coordinates() const { return coordinates_; }

 private:
  double best_ = std::numeric_limits<double>::infinity();
  std::vector<T> coordinates_;
};

// Scales the gradient down to Euclidean norm `max_norm` when it is longer.
class GradientClipByNorm {
 public:
  explicit GradientClipByNorm(double max_norm) : max_norm_(max_norm) {
    if (!(max_norm > 0)) {
      throw InvalidArgument("GradientClipByNorm: max_norm " + std::to_string(max_norm) +
                            ": must be > 0");
    }
  }
  template <class T>
  void Gradient(const MinimizeState<T>&, std::span<T> g) {
    double squares = 0;
    for (T v : g) squares += double(v) * double(v);
    const double norm = std::sqrt(squares);
    if (norm <= max_norm_) return;
    const T scale = T(max_norm_ / norm);
    for (T& v : g) v *= scale;
  }

 private:
  double max_norm_;
};

// Clamps every gradient element to [lo, hi].
class GradientClipByValue {
 public:
  GradientClipByValue(double lo, double hi) : lo_(lo), hi_(hi) {
    if (!(lo <= hi)) {
      throw InvalidArgument("GradientClipByValue: lo " + std::to_string(lo) + " > hi " +
                            std::to_string(hi));
    }
  }
  template <class T>
  void Gradient(const MinimizeState<T>&, std::span<T> g) {
    for (T& v : g) v = std::clamp(v, T(lo_), T(hi_));
  }

 private:
  double lo_, hi_;
};

// Stops once `seconds` of wall time have passed since the optimization began.
class TimeLimit {
 public:
  explicit TimeLimit(double seconds) : seconds_(seconds) {
    if (!(seconds >= 0)) {
      throw InvalidArgument("TimeLimit: seconds " + std::to_string(seconds) + ": must be >= 0");
    }
  }
  template <class T>
  void BeginOptimization(const MinimizeState<T>&) {
    start_ = std::chrono::steady_clock::now();
  }
  template <class T>
  bool StepTaken(const MinimizeState<T>&) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count() >=
           seconds_;
  }

 private:
  double seconds_;
  std::chrono::steady_clock::time_point start_{};
};

}  // namespace rmsprop::callbacks
