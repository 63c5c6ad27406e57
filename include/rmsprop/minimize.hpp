// Minimizing a differentiable function with the RMSProp family, in the spirit of ensmallen's
// Optimize(function, coordinates, callbacks...).
//
//   struct Rosenbrock {
//     double Evaluate(std::span<const double> x) const;
//     void Gradient(std::span<const double> x, std::span<double> g) const;
//   };
//   std::vector<double> x = {-1.5, 2.0};
//   rmsprop::MinimizeOptions mo;
//   mo.optimizer.lr = 1e-2;
//   auto result = rmsprop::minimize(Rosenbrock{}, std::span(x), mo,
//                                   rmsprop::callbacks::PrintLoss(1000),
//                                   rmsprop::callbacks::EarlyStopAtMinLoss(20));
//
// The function type must model one of the concepts below; anything else fails to compile
// with the concept's name in the message (tests/minimize_concept_failure.cpp is a CTest that
// expects exactly that). T is float or double.
//
//   DifferentiableFunction<F, T>:  double Evaluate(span<const T> x)
//                                  void Gradient(span<const T> x, span<T> g)
//                               or double EvaluateWithGradient(span<const T> x, span<T> g)
//   SeparableFunction<F, T> (mini-batches; an epoch visits every function once):
//                                  size_t NumFunctions()
//                                  double Evaluate(span<const T> x, size_t begin, size_t batch)
//                                  void Gradient(span<const T> x, size_t begin, span<T> g,
//                                                size_t batch)
//                               or double EvaluateWithGradient(x, begin, g, batch)
//                               and optionally void Shuffle()
//   BlockFunction<F, T> (coordinates in several buffers, std::vector<std::span<T>>):
//                                  double EvaluateWithGradient(span<const span<T>> x,
//                                                              span<const span<T>> g)
//
// Callbacks are any objects; each hook they define is called (ensmallen's names):
//   void BeginOptimization(const MinimizeState<T>&)     void EndOptimization(const ...&)
//   bool Evaluate(const MinimizeState<T>&, double f)    after an objective (true: stop)
//   bool Gradient(const MinimizeState<T>&, span<T> g)   may change g (clipping); true: stop
//   bool StepTaken(const MinimizeState<T>&)             after each step; true: stop
//   bool BeginEpoch(const MinimizeState<T>&)            separable only; true: stop
//   bool EndEpoch(const MinimizeState<T>&, double f)    epoch objective; true: stop
// A plain callable bool(const MinimizeState<T>&) is a StepTaken hook.
#pragma once

#include <chrono>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdio>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rmsprop/error.hpp"
#include "rmsprop/optimizer.hpp"
#include "rmsprop/schedule.hpp"

namespace rmsprop {

template <class F, class T>
concept FunctionWithSeparateGradient = requires(F& f, std::span<const T> x, std::span<T> g) {
  { f.Evaluate(x) } -> std::convertible_to<double>;
  f.Gradient(x, g);
};

template <class F, class T>
concept FunctionWithJointGradient = requires(F& f, std::span<const T> x, std::span<T> g) {
  { f.EvaluateWithGradient(x, g) } -> std::convertible_to<double>;
};

template <class F, class T>
concept DifferentiableFunction =
    FunctionWithSeparateGradient<F, T> || FunctionWithJointGradient<F, T>;

template <class F, class T>
concept SeparableFunction = requires(F& f, std::span<const T> x, std::span<T> g, std::size_t begin,
                                     std::size_t batch) {
  { f.NumFunctions() } -> std::convertible_to<std::size_t>;
}
&&(
    requires(F& f, std::span<const T> x, std::span<T> g, std::size_t begin, std::size_t batch) {
      { f.Evaluate(x, begin, batch) } -> std::convertible_to<double>;
      f.Gradient(x, begin, g, batch);
    } ||
    requires(F & f, std::span<const T> x, std::span<T> g, std::size_t begin, std::size_t batch) {
      { f.EvaluateWithGradient(x, begin, g, batch) } -> std::convertible_to<double>;
    });

template <class F, class T>
concept MinimizableFunction = DifferentiableFunction<F, T> || SeparableFunction<F, T>;

// Coordinates in several buffers (say, a layer's weights and biases): the function sees them
// all, and writes each one's gradient into the matching buffer of g.
template <class F, class T>
concept BlockFunction = requires(F& f, std::span<const std::span<T>> x,
                                 std::span<const std::span<T>> g) {
  { f.EvaluateWithGradient(x, g) } -> std::convertible_to<double>;
};

enum class StopReason {
  max_iterations,  // MinimizeOptions::max_iterations steps taken
  tolerance,       // the objective changed by less than MinimizeOptions::tolerance
  callback,        // a callback asked to stop (early stopping, time limit, yours)
  non_finite,      // the objective became NaN or infinite
};
inline std::string_view to_string(StopReason reason) {
  switch (reason) {
    case StopReason::max_iterations:
      return "max_iterations";
    case StopReason::tolerance:
      return "tolerance";
    case StopReason::callback:
      return "callback";
    case StopReason::non_finite:
      return "non_finite";
  }
  return "?";
}

struct MinimizeOptions {
  Options optimizer = Options::from_flavor(Flavor::torch);  // any options or flavor
  std::size_t max_iterations = 100'000;                     // steps (0: no limit)
  // Stop when |f_k − f_{k−1}| < tolerance: per step, or per epoch for separable functions
  // (negative: never).
  double tolerance = 1e-8;
  std::size_t batch_size = 32;  // separable functions
  bool shuffle = true;          // separable functions: call Shuffle() before each epoch
  int threads = 1;              // the kernel's threads (small problems: 1)
  Schedule schedule = Schedule::constant();  // the learning rate over steps
};

template <class T>
struct MinimizeState {
  std::span<const T> coordinates;        // one flat buffer (empty when several)
  std::span<const std::span<T>> blocks;  // every buffer (one, or several)
  std::size_t iteration = 0;             // steps taken so far
  std::size_t epoch = 0;                 // separable: epochs begun (1-based during the first)
  double objective = std::numeric_limits<double>::quiet_NaN();  // the latest one evaluated
};

struct MinimizeResult {
  double objective;  // f at the final coordinates (the last epoch's sum for separable functions)
  std::size_t iterations;
  StopReason reason;
};

namespace detail {

template <class C, class T>
bool call_step_taken(C& c, const MinimizeState<T>& s) {
  if constexpr (requires {
                  { c.StepTaken(s) } -> std::convertible_to<bool>;
                }) {
    return c.StepTaken(s);
  } else if constexpr (requires { c.StepTaken(s); }) {
    c.StepTaken(s);
  } else if constexpr (requires {
                         { c(s) } -> std::convertible_to<bool>;
                       }) {
    return c(s);
  }
  return false;
}

// Calls hook `name` on each callback that has it; true when any asks to stop.
#define RMSPROP_CALL_HOOK(name, ...)                                          \
  [&]<class... Cs>(Cs&... cs) {                                               \
    bool stop = false;                                                        \
    (([&] {                                                                   \
       if constexpr (requires {                                               \
                       { cs.name(__VA_ARGS__) } -> std::convertible_to<bool>; \
                     })                                                       \
         stop = bool(cs.name(__VA_ARGS__)) || stop;                           \
       else if constexpr (requires { cs.name(__VA_ARGS__); })                 \
         cs.name(__VA_ARGS__);                                                \
     }()),                                                                    \
     ...);                                                                    \
    return stop;                                                              \
  }

template <class T, class F>
double objective_and_gradient(F& f, std::span<const T> x, std::span<T> g) {
  if constexpr (FunctionWithJointGradient<F, T>) {
    return double(f.EvaluateWithGradient(x, g));
  } else {
    f.Gradient(x, g);
    return double(f.Evaluate(x));
  }
}

template <class T, class F>
double batch_objective_and_gradient(F& f, std::span<const T> x, std::size_t begin, std::span<T> g,
                                    std::size_t batch) {
  if constexpr (requires { f.EvaluateWithGradient(x, begin, g, batch); }) {
    return double(f.EvaluateWithGradient(x, begin, g, batch));
  } else {
    f.Gradient(x, begin, g, batch);
    return double(f.Evaluate(x, begin, batch));
  }
}

inline void check(const MinimizeOptions& o, std::size_t size) {
  o.optimizer.validate();
  if (size == 0) throw InvalidArgument("minimize: the coordinates are empty");
  if (o.batch_size == 0) throw InvalidArgument("minimize: batch_size 0: must be >= 1");
  if (o.threads < 0) {
    throw InvalidArgument("minimize: threads " + std::to_string(o.threads) + ": must be >= 0");
  }
}

// The engine: f over the coordinate buffers `blocks` (one, for flat functions).
template <class T, class F, class... Callbacks>
MinimizeResult minimize_blocks(F& f, std::span<const std::span<T>> blocks, const MinimizeOptions& o,
                               Callbacks&... callbacks) {
  std::size_t total = 0;
  for (const auto& b : blocks) {
    if (b.empty()) throw InvalidArgument("minimize: a coordinate buffer is empty");
    total += b.size();
  }
  detail::check(o, total);
  std::vector<T> g(total);  // every block's gradient, contiguous: callbacks see one vector
  std::vector<std::span<T>> g_blocks;
  std::vector<Param> params;
  for (std::size_t k = 0, at = 0; k < blocks.size(); at += blocks[k].size(), ++k) {
    g_blocks.push_back(std::span<T>(g).subspan(at, blocks[k].size()));
    params.push_back(Param::of(blocks[k], g_blocks.back()));
  }
  Optimizer opt(params, o.optimizer);
  opt.set_kernel_config({o.threads, {}});
  opt.set_schedule(o.schedule);
  MinimizeState<T> s;
  if (blocks.size() == 1) s.coordinates = blocks[0];
  s.blocks = blocks;
  const auto cx = std::span<const T>(blocks[0]);
  auto objective_and_gradient = [&] {
    std::fill(g.begin(), g.end(), T(0));
    if constexpr (BlockFunction<F, T>) {
      return double(f.EvaluateWithGradient(blocks, std::span<const std::span<T>>(g_blocks)));
    } else if constexpr (DifferentiableFunction<F, T>) {
      return detail::objective_and_gradient<T>(f, cx, std::span<T>(g));
    } else {
      return 0.0;  // separable only: evaluated by mini-batches below
    }
  };
  auto all = [&](auto hook) { return hook(callbacks...); };
  all(RMSPROP_CALL_HOOK(BeginOptimization, s));
  StopReason reason = StopReason::max_iterations;
  double previous = std::numeric_limits<double>::infinity();
  auto limit_reached = [&] { return o.max_iterations != 0 && s.iteration >= o.max_iterations; };
  // One step from the gradient in g whose objective is `value`; true: stop (reason set).
  auto step = [&](double value) {
    s.objective = value;
    if (!std::isfinite(value)) {
      reason = StopReason::non_finite;
      return true;
    }
    bool stop = all(RMSPROP_CALL_HOOK(Evaluate, s, value));
    stop = all(RMSPROP_CALL_HOOK(Gradient, s, std::span<T>(g))) || stop;
    if (stop) {
      reason = StopReason::callback;
      return true;
    }
    opt.step();
    ++s.iteration;
    bool asked = false;
    ((asked = detail::call_step_taken(callbacks, s) || asked), ...);
    if (asked) {
      reason = StopReason::callback;
      return true;
    }
    return false;
  };
  double final_objective = std::numeric_limits<double>::quiet_NaN();
  if constexpr (!BlockFunction<F, T> && SeparableFunction<F, T>) {
    const std::size_t n = f.NumFunctions();
    if (n == 0) throw InvalidArgument("minimize: NumFunctions() is 0");
    for (bool done = false; !done;) {
      if (limit_reached()) break;
      if (o.shuffle) {
        if constexpr (requires { f.Shuffle(); }) f.Shuffle();
      }
      ++s.epoch;
      if (all(RMSPROP_CALL_HOOK(BeginEpoch, s))) {
        reason = StopReason::callback;
        break;
      }
      double epoch_objective = 0;
      for (std::size_t begin = 0; begin < n && !done; begin += o.batch_size) {
        if (limit_reached()) {
          done = true;
          break;
        }
        const std::size_t batch = std::min(o.batch_size, n - begin);
        std::fill(g.begin(), g.end(), T(0));
        const double value = detail::batch_objective_and_gradient<T>(f, cx, begin, g, batch);
        epoch_objective += value;
        done = step(value);
      }
      if (done) break;
      final_objective = epoch_objective;
      if (all(RMSPROP_CALL_HOOK(EndEpoch, s, epoch_objective))) {
        reason = StopReason::callback;
        break;
      }
      if (std::abs(epoch_objective - previous) < o.tolerance) {
        reason = StopReason::tolerance;
        break;
      }
      previous = epoch_objective;
    }
    if (!std::isfinite(final_objective) || reason != StopReason::tolerance) {
      final_objective = 0;  // the objective at the final coordinates, over every function
      for (std::size_t begin = 0; begin < n; begin += o.batch_size) {
        std::fill(g.begin(), g.end(), T(0));
        final_objective += detail::batch_objective_and_gradient<T>(
            f, cx, begin, g, std::min(o.batch_size, n - begin));
      }
    }
  } else {
    while (!limit_reached()) {
      const double value = objective_and_gradient();
      if (step(value)) break;
      if (std::abs(value - previous) < o.tolerance) {
        reason = StopReason::tolerance;
        break;
      }
      previous = value;
    }
    final_objective = objective_and_gradient();
  }
  s.objective = final_objective;
  all(RMSPROP_CALL_HOOK(EndOptimization, s));
  return {final_objective, s.iteration, reason};
}

}  // namespace detail

// Minimizes f from the coordinates `x` (updated in place). Throws InvalidArgument /
// InvalidOption for bad options; a NaN/inf objective ends with StopReason::non_finite.
template <class T, class F, class... Callbacks>
requires(std::same_as<T, float> || std::same_as<T, double>) &&
    MinimizableFunction<F, T> MinimizeResult
    minimize(F&& f, std::span<T> x, const MinimizeOptions& o, Callbacks&&... callbacks) {
  const std::span<T> blocks[] = {x};
  return detail::minimize_blocks<T>(f, std::span<const std::span<T>>(blocks), o, callbacks...);
}

// std::vector coordinates.
template <class T, class F, class... Callbacks>
MinimizeResult minimize(F&& f, std::vector<T>& x, const MinimizeOptions& o,
                        Callbacks&&... callbacks) {
  return minimize(std::forward<F>(f), std::span<T>(x), o, std::forward<Callbacks>(callbacks)...);
}

// Coordinates in several buffers, for a BlockFunction (not separable).
template <class T, class F, class... Callbacks>
requires(std::same_as<T, float> || std::same_as<T, double>) && BlockFunction<F, T> MinimizeResult
    minimize(F&& f, const std::vector<std::span<T>>& blocks, const MinimizeOptions& o,
             Callbacks&&... callbacks) {
  if (blocks.empty()) throw InvalidArgument("minimize: no coordinate buffers");
  return detail::minimize_blocks<T>(f, std::span<const std::span<T>>(blocks), o, callbacks...);
}

#undef RMSPROP_CALL_HOOK

}  // namespace rmsprop
