#include <omp.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "commands.hpp"
#include "flag_checks.hpp"
#include "measure.hpp"
#include "progress.hpp"
#include "rmsprop/error.hpp"

namespace rmsprop::cli {
namespace {

struct BenchFlags {
  std::vector<std::string> shapes = {"1x33554432", "4096x8192"};
  std::vector<std::string> variants = {"plain", "momentum", "centered"};
  std::vector<std::string> dtypes = {"float32", "bfloat16"};
  std::vector<int> threads = {0};
  int repeats = 15;
  bool json = false;
  bool progress = stderr_is_terminal();
};

std::pair<std::size_t, std::size_t> parse_shape(const std::string& text) {
  const auto x = text.find('x');
  try {
    std::size_t used = 0;
    const unsigned long long tensors = std::stoull(text.substr(0, x), &used);
    if (x == std::string::npos || used != x) throw std::invalid_argument(text);
    const unsigned long long elements = std::stoull(text.substr(x + 1), &used);
    if (used != text.size() - x - 1 || tensors == 0) throw std::invalid_argument(text);
    return {tensors, elements};
  } catch (const std::logic_error&) {
    throw InvalidOption("--shape '" + text + "': expected TENSORSxELEMENTS, e.g. 4096x8192");
  }
}

// The benchmark's naive peer is written for these two (bench/naive_loop_impl.inl).
DType parse_dtype(const std::string& text) {
  const std::optional<DType> d = dtype_named(text);
  if (d == DType::f32 || d == DType::bf16) return *d;
  throw InvalidOption("--dtype '" + text + "': float32 or bfloat16");
}

void run_bench(const BenchFlags& f) {
  std::vector<bench::StepCase> cases;
  std::size_t largest = 0;
  for (const std::string& shape : f.shapes) {
    const auto [tensors, elements] = parse_shape(shape);
    largest = std::max(largest, tensors * elements);
    for (const std::string& dtype : f.dtypes) {
      for (const std::string& variant : f.variants) {
        bench::variant_options(variant);  // refuse unknown names before measuring anything
        for (int t : f.threads)
          cases.push_back({variant, parse_dtype(dtype), tensors, elements, t});
      }
    }
  }
  if (f.repeats < 1)
    throw InvalidOption("--repeats " + std::to_string(f.repeats) + ": must be >= 1");
  const int all = omp_get_max_threads();
  const bench::Roofline roof =
      bench::measure_roofline(std::max<std::size_t>(largest, 1 << 22), all, f.repeats);
  nlohmann::json doc = {{"simd_target", std::string(to_string(default_simd_target()))},
                        {"roofline",
                         {{"threads", all},
                          {"copy_gbs", roof.copy_gbs},
                          {"triad_gbs", roof.triad_gbs},
                          {"inplace_update_gbs", roof.inplace_gbs}}},
                        {"cases", nlohmann::json::array()}};
  if (!f.json) {
    std::printf(
        "SIMD %s; roofline (%d threads): copy %.2f GB/s, triad %.2f GB/s, in-place update "
        "%.2f GB/s; %%roof = the same reads and writes with no math\n",
        doc["simd_target"].get<std::string>().c_str(), all, roof.copy_gbs, roof.triad_gbs,
        roof.inplace_gbs);
    std::printf("%-18s %-9s %-12s %7s %11s %8s %8s %6s %7s\n", "variant", "dtype", "shape",
                "threads", "s/step", "Gel/s", "GB/s", "%roof", "%copy");
  }
  Progress bar("bench", std::int64_t(cases.size()), f.progress);
  for (std::size_t k = 0; k < cases.size(); ++k) {
    const bench::StepCase& c = cases[k];
    const bench::StepTiming t = bench::time_step(c, f.repeats);
    bar.update(std::int64_t(k + 1));
    const double elements = double(c.tensors * c.elements);
    const double bytes =
        double(bench::bytes_per_element(bench::variant_options(c.variant), c.dtype));
    const double gels = elements / t.seconds / 1e9;
    const int threads = c.threads ? c.threads : all;
    const std::string dtype(to_string(c.dtype));
    doc["cases"].push_back({{"variant", c.variant},
                            {"dtype", dtype},
                            {"tensors", c.tensors},
                            {"elements", c.tensors * c.elements},
                            {"threads", threads},
                            {"seconds_per_step", t.seconds},
                            {"g_elements_per_s", gels},
                            {"gb_per_s", gels * bytes},
                            {"traffic_only_seconds", t.traffic_seconds},
                            {"fraction_of_roofline", t.traffic_seconds / t.seconds},
                            {"fraction_of_copy", gels * bytes / roof.copy_gbs}});
    if (!f.json) {
      const std::string shape = std::to_string(c.tensors) + "x" + std::to_string(c.elements);
      bar.finish();
      std::printf("%-18s %-9s %-12s %7d %11.6f %8.3f %8.2f %5.0f%% %6.0f%%\n", c.variant.c_str(),
                  dtype.c_str(), shape.c_str(), threads, t.seconds, gels, gels * bytes,
                  100 * t.traffic_seconds / t.seconds, 100 * gels * bytes / roof.copy_gbs);
      std::fflush(stdout);
    }
  }
  if (f.json) std::printf("%s\n", doc.dump(2).c_str());
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto flags = std::make_shared<BenchFlags>();
  CLI::App* cmd = app.add_subcommand(
      "bench",
      "Time the fused optimizer step for your sizes, variants, dtypes and thread counts, beside "
      "this machine's memory roofline measured in the same run (rmsprop-bench adds PyTorch)");
  cmd->add_option("--shape", flags->shapes, "Repeatable: TENSORSxELEMENTS (elements per tensor)")
      ->capture_default_str();
  std::string variants;
  for (const auto& v : bench::variant_names()) variants += (variants.empty() ? "" : ", ") + v;
  cmd->add_option("--variant", flags->variants, "Repeatable: " + variants)->capture_default_str();
  cmd->add_option("--dtype", flags->dtypes,
                  "Repeatable: float32, bfloat16 (parameters and "
                  "gradients; state float32)")
      ->capture_default_str();
  cmd->add_option("--threads", flags->threads, "Repeatable: thread counts (0: all cores)")
      ->check(thread_count())
      ->capture_default_str();
  cmd->add_option("--repeats", flags->repeats, "Timed steps per case (the median is reported)")
      ->capture_default_str();
  cmd->add_flag("--json", flags->json, "One JSON document instead of the table");
  cmd->add_flag("--progress,!--no-progress", flags->progress,
                "Progress bar on stderr (default: when stderr is a terminal)");
  cmd->callback([flags] { run_bench(*flags); });
}

}  // namespace rmsprop::cli
