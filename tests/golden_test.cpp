// The C++ optimizer against trajectories recorded from real PyTorch (torch.txt), from each
// other flavor's formula written independently in NumPy (flavors.txt), and from real optax and
// timm (libraries.txt): every step, every case. The generators are tests/golden/generate.py and
// tests/golden/record_libraries.py (run where optax and timm are installed).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "rmsprop/optimizer.hpp"
#include "test_util.hpp"

namespace rmsprop {
namespace {

// Matches generate.py: per-element gradient scales; the last element is 0 on even steps.
constexpr double kScales[] = {1.0, 0.5, 1e-3, 10.0, 1e-6, 3.0, 0.02, 1.0};

struct GoldenCase {
  std::string name;
  std::vector<std::pair<std::string, std::string>> options;
  bool f32 = false;
  std::uint64_t seed = 0;
  std::size_t n = 0;
  std::vector<double> init;
  std::vector<std::vector<double>> steps;  // the parameter after each step
};

std::vector<double> parse_values(std::istringstream& in) {
  std::vector<double> values;
  std::string word;
  while (in >> word) values.push_back(std::strtod(word.c_str(), nullptr));
  return values;
}

std::vector<GoldenCase> read_cases(const std::string& file) {
  std::ifstream in(std::string(RMSPROP_GOLDEN_DIR) + "/" + file);
  EXPECT_TRUE(in) << "missing golden file " << file << "; run tests/golden/generate.py";
  std::vector<GoldenCase> cases;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string key;
    words >> key;
    if (key == "case") {
      cases.emplace_back();
      words >> cases.back().name;
    } else if (key == "options") {
      std::string pair;
      while (words >> pair) {
        auto eq = pair.find('=');
        cases.back().options.emplace_back(pair.substr(0, eq), pair.substr(eq + 1));
      }
    } else if (key == "dtype") {
      std::string d;
      words >> d;
      cases.back().f32 = d == "f32";
    } else if (key == "seed") {
      words >> cases.back().seed;
    } else if (key == "n") {
      words >> cases.back().n;
    } else if (key == "init") {
      cases.back().init = parse_values(words);
    } else if (!key.empty() && std::isdigit(static_cast<unsigned char>(key[0]))) {
      cases.back().steps.push_back(parse_values(words));
    }
  }
  return cases;
}

struct Deviation {
  double max_relative = 0;          // |ours − expected| / the element's scale, over all steps
  std::vector<double> per_element;  // the same, per element
};

// Each element's scale: the largest |θ| along its expected trajectory.
std::vector<double> element_scales(const GoldenCase& c) {
  std::vector<double> scale(c.n, 0.0);
  for (const auto& step : c.steps) {
    for (std::size_t j = 0; j < c.n; ++j) scale[j] = std::max(scale[j], std::abs(step[j]));
  }
  return scale;
}

// How far the framework's float32 trajectory is from its float64 one, per element, relative
// to the element's scale.
std::vector<double> own_float32_error(const GoldenCase& f32, const GoldenCase& f64) {
  const auto scale = element_scales(f32);
  std::vector<double> error(f32.n, 0.0);
  for (std::size_t t = 0; t < f32.steps.size(); ++t) {
    for (std::size_t j = 0; j < f32.n; ++j) {
      error[j] = std::max(error[j], std::abs(f32.steps[t][j] - f64.steps[t][j]) / scale[j]);
    }
  }
  return error;
}

// Runs our optimizer on the case's inputs and compares each step with `expected` (default: the
// case's own trajectory).
template <class T>
Deviation replay(const GoldenCase& c, const GoldenCase* expected_case = nullptr) {
  const GoldenCase& expected = expected_case ? *expected_case : c;
  testing::SplitMix64 rng(c.seed);
  std::vector<T> param(c.n), grad(c.n);
  for (std::size_t j = 0; j < c.n; ++j) {
    param[j] = T(rng.uniform());
    EXPECT_EQ(double(param[j]), c.init[j]) << c.name << ": the gradient stream drifted";
  }
  Optimizer opt({Param::of(std::span<T>(param), std::span<T>(grad))},
                Options::from_pairs(c.options));
  const auto scale = element_scales(expected);
  Deviation dev;
  dev.per_element.assign(c.n, 0.0);
  for (std::size_t t = 1; t <= c.steps.size(); ++t) {
    for (std::size_t j = 0; j < c.n; ++j) grad[j] = T(kScales[j] * rng.uniform());
    if (t % 2 == 0) grad[c.n - 1] = T(0);
    opt.step();
    for (std::size_t j = 0; j < c.n; ++j) {
      const double error = std::abs(double(param[j]) - expected.steps[t - 1][j]) / scale[j];
      dev.max_relative = std::max(dev.max_relative, error);
      dev.per_element[j] = std::max(dev.per_element[j], error);
    }
  }
  return dev;
}

// NOTE: [golden tolerances]
// Errors are measured relative to each element's scale (its largest |θ| along the trajectory),
// not to |θ| at that step: a parameter passing near zero has tiny ulps there while the
// rounding of earlier steps happened at its full size.
// float64: 1e-12 relative. float32: within 8 ulps of the scale (8·2^-23 ≈ 1e-6) of the
// framework's float32 trajectory; or, where that fails, within 8 ulps plus 4 times the
// framework's own float32 error of the exact trajectory (the framework's float64 run on the
// same inputs). The second arm covers two honest cases: an ill-conditioned element (centered
// RMSProp with a nearly constant gradient, where v − m² cancels and every float32
// implementation lands far from the exact answer and from each other) and a framework whose
// formula rounds worse than ours (timm's θ·(1 − ηλ)). On torch case rmsprop11 (centered,
// maximize, weight decay: elements 2 and 4 see a nearly constant gradient) PyTorch's float32
// lands 3 and 10 ulps from exact; 16 float32 orderings of the same formula (with and without
// FMA in each update) land 10 to 30 ulps away, so its error there is luck, and 4x is the
// margin that covers it. Why not bitwise in general: the rule
// computes each framework's formula but not always in its order (x·(1/c) for x/c, one EMA
// form), and PyTorch's CPU kernels fuse θ + α·x into an FMA where ours round twice (see
// NOTE: [no fused multiply-add]). Each test prints its measured maxima.
void check_file(const std::string& file) {
  const auto cases = read_cases(file);
  ASSERT_FALSE(cases.empty());
  std::map<std::string, const GoldenCase*> f64_by_name;
  for (const GoldenCase& c : cases) {
    if (!c.f32) f64_by_name[c.name.substr(0, c.name.rfind('/'))] = &c;
  }
  for (const GoldenCase& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_EQ(c.steps.size(), 200u);
    if (!c.f32) {
      const double error = replay<double>(c).max_relative;
      EXPECT_LE(error, 1e-12) << c.name;
      std::printf("  %-60s max relative %.2e\n", c.name.c_str(), error);
      continue;
    }
    const GoldenCase& exact = *f64_by_name.at(c.name.substr(0, c.name.rfind('/')));
    const auto own = own_float32_error(c, exact);
    const auto vs_framework = replay<float>(c).per_element;
    const auto vs_exact = replay<float>(c, &exact).per_element;
    double worst = 0;
    std::string note;
    for (std::size_t j = 0; j < c.n; ++j) {
      const double ulps = vs_framework[j] / 0x1p-23;
      worst = std::max(worst, ulps);
      if (ulps <= 8) continue;
      const double exact_ulps = vs_exact[j] / 0x1p-23, own_ulps = own[j] / 0x1p-23;
      EXPECT_LE(exact_ulps, 8 + 4 * own_ulps) << c.name << " element " << j;
      char text[160];
      std::snprintf(text, sizeof text, "; element %zu: %.1f ulps from exact, framework %.1f", j,
                    exact_ulps, own_ulps);
      note += text;
    }
    std::printf("  %-60s max %.2f ulps of scale%s\n", c.name.c_str(), worst, note.c_str());
  }
}

TEST(Golden, TorchRMSpropAndBaselinesMatchRecordedPyTorch) {
  check_file("torch.txt");
}

TEST(Golden, EveryOtherFlavorMatchesItsIndependentFormula) {
  check_file("flavors.txt");
}

TEST(Golden, OptaxAndTimmFlavorsMatchRecordedOptaxAndTimm) {
  check_file("libraries.txt");
}

}  // namespace
}  // namespace rmsprop
