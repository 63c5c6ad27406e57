// Must NOT compile: CTest minimize_rejects_non_functions expects the compiler to name the
// unmet concept. A type with Evaluate but no gradient is not a DifferentiableFunction.
#include <span>
#include <vector>

#include "rmsprop/minimize.hpp"

struct NoGradient {
  double Evaluate(std::span<const double> x) const { return x[0] * x[0]; }
};

int main() {
  std::vector<double> x = {1.0};
  rmsprop::minimize(NoGradient{}, std::span<double>(x), rmsprop::MinimizeOptions{});
}
