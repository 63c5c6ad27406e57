// rmsprop-bench: the optimizer step against this machine's memory roofline, the obvious fused
// loop, and PyTorch's torch.optim.RMSprop, all measured in one run (docs/benchmarks.md).
//
//   rmsprop-bench [--json] [--quick] [--threads N] [--no-torch] [--python PATH]
//
// Times are the median over repeated steps; ours is measured before and after PyTorch
// (alternated, since this machine is noisy) and the better median is reported with both.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "measure.hpp"
#include "naive_loop.hpp"
#include "rmsprop/half.hpp"
#include "rmsprop/kernel.hpp"
#include "rmsprop/optimizer.hpp"

namespace {

using rmsprop::bench::Buffers;
using rmsprop::bench::measure_roofline;
using rmsprop::bench::median_seconds;
using rmsprop::bench::Roofline;

struct Settings {
  bool json = false, quick = false, torch = true;
  int threads = 0;
  std::string python = "/usr/bin/python3";
};

struct Shape {
  std::string name;
  std::size_t tensors, elements;  // elements per tensor
};

struct VariantCase {
  std::string name;
  bool momentum, centered, bias_correction;
  int buffers;  // state buffers read and written besides param (written) and grad (read)
};

const VariantCase kVariants[] = {
    {"plain", false, false, false, 1},
    {"momentum", true, false, false, 2},
    {"centered+momentum", true, true, false, 3},
    {"bias-corrected", false, false, true, 1},
};

// Parameters and gradients in float32 or bfloat16; state always float32.
const rmsprop::DType kDTypes[] = {rmsprop::DType::f32, rmsprop::DType::bf16};

std::size_t bytes_per_element(const VariantCase& v, rmsprop::DType dtype) {
  // param read+write, grad read, each state buffer read+write
  return 3 * rmsprop::size_of(dtype) + 8 * std::size_t(v.buffers);
}

void naive_step(const VariantCase& v, Buffers& buf, const Shape& s, int threads, long step) {
  const float bc = v.bias_correction ? float(1.0 / (1.0 - std::pow(0.99, double(step)))) : 1.0f;
  for (std::size_t k = 0; k < s.tensors; ++k) {
    naive_loop(v.momentum, v.centered, !buf.p16.empty(), buf.param(k), buf.grad(k), buf.v[k].get(),
               buf.m[k].get(), buf.b[k].get(), long(s.elements), threads, bc);
  }
}

void ours_prepare(const VariantCase& v, Buffers& buf, const Shape& s, rmsprop::Options& o,
                  std::vector<rmsprop::TensorTask>& tasks) {
  o = rmsprop::Options{};
  o.momentum = v.momentum ? 0.9 : 0;
  o.centered = v.centered;
  o.bias_correction = v.bias_correction;
  tasks.clear();
  for (std::size_t k = 0; k < s.tensors; ++k) {
    tasks.push_back({buf.param(k), buf.grad(k), buf.v[k].get(), buf.m[k].get(), buf.b[k].get(),
                     s.elements, rmsprop::coefficients(o, 1, o.lr)});
  }
}

// PyTorch's figures for every (variant, shape), from one Python process: {key: seconds}.
std::map<std::string, double> measure_torch(const Settings& st, const std::vector<Shape>& shapes,
                                            int repeats) {
  std::map<std::string, double> out;
  std::ostringstream cmd;
  cmd << st.python << " " << RMSPROP_BENCH_DIR << "/torch_rmsprop.py --repeats " << repeats
      << " --threads " << (st.threads ? st.threads : omp_get_max_threads());
  for (const Shape& s : shapes)
    cmd << " --shape " << s.name << ":" << s.tensors << "x" << s.elements;
  FILE* pipe = popen(cmd.str().c_str(), "r");
  if (!pipe) return out;
  char line[512];
  while (std::fgets(line, sizeof line, pipe)) {
    char key[256];
    double seconds;
    if (std::sscanf(line, "%255s %lf", key, &seconds) == 2) out[key] = seconds;
  }
  if (pclose(pipe) != 0) std::fprintf(stderr, "rmsprop-bench: PyTorch measurement failed\n");
  return out;
}

// bench/python_optimizer_bench.py's output (a table, or a JSON array with --json), run with
// the module this build made; "" when it cannot run.
std::string python_interface(const Settings& st, int threads, int repeats) {
  std::ostringstream cmd;
  cmd << "PYTHONPATH=" << RMSPROP_PYTHON_DIR << " " << st.python << " " << RMSPROP_BENCH_DIR
      << "/python_optimizer_bench.py --repeats " << repeats << " --threads " << threads
      << (st.json ? " --json" : "");
  FILE* pipe = popen(cmd.str().c_str(), "r");
  if (!pipe) return "";
  std::string out;
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  if (pclose(pipe) != 0) {
    std::fprintf(stderr, "rmsprop-bench: the Python interface benchmark failed\n");
    return "";
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out + (st.json ? "" : "\n");
}

// A JSON number, or null for a figure that was not measured.
std::string json_number(double x) {
  if (!std::isfinite(x)) return "null";
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", x);
  return text;
}

}  // namespace

int main(int argc, char** argv) try {
  Settings st;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json")
      st.json = true;
    else if (a == "--quick")
      st.quick = true;
    else if (a == "--no-torch")
      st.torch = false;
    else if (a == "--threads" && i + 1 < argc)
      st.threads = rmsprop::bench::parse_threads(argv[++i]);
    else if (a == "--python" && i + 1 < argc)
      st.python = argv[++i];
    else {
      std::fprintf(stderr,
                   "usage: rmsprop-bench [--json] [--quick] [--threads N] [--no-torch] "
                   "[--python PATH]\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  const int threads = st.threads ? st.threads : omp_get_max_threads();
  const int repeats = st.quick ? 5 : 15;
  const std::vector<Shape> shapes =
      st.quick ? std::vector<Shape>{{"1x2^22", 1, 1u << 22}, {"512x8192", 512, 8192}}
               : std::vector<Shape>{{"1x2^25", 1, 1u << 25}, {"4096x8192", 4096, 8192}};

  const Roofline roof = measure_roofline(shapes[0].elements * shapes[0].tensors, threads, repeats);
  struct Row {
    std::string variant, shape;
    rmsprop::DType dtype;
    std::size_t tensors, elements, bytes;
    double ours1, ours2, naive, traffic = NAN, torch_foreach = NAN, torch_single = NAN;
  };
  std::vector<Row> rows;
  const rmsprop::KernelConfig config{st.threads, {}};
  auto measure_ours = [&](const VariantCase& v, const Shape& s, rmsprop::DType dtype) {
    Buffers buf(s.tensors, s.elements, dtype);
    rmsprop::Options o;
    std::vector<rmsprop::TensorTask> tasks;
    ours_prepare(v, buf, s, o, tasks);
    const auto variant = rmsprop::variant_of(o);
    const rmsprop::Precision precision{dtype, rmsprop::DType::f32, false, false};
    return median_seconds(repeats, [&] { rmsprop::fused_step(variant, precision, tasks, config); });
  };
  for (rmsprop::DType dtype : kDTypes) {
    for (const VariantCase& v : kVariants) {
      for (const Shape& s : shapes) {
        Row r{v.name, s.name, dtype, s.tensors, s.elements, bytes_per_element(v, dtype), 0, 0, 0};
        r.ours1 = measure_ours(v, s, dtype);
        Buffers buf(s.tensors, s.elements, dtype);
        long step = 0;
        r.naive = median_seconds(repeats, [&] { naive_step(v, buf, s, threads, ++step); });
        std::vector<void*> p, g;
        std::vector<float*> sq, m, b;
        for (std::size_t k = 0; k < s.tensors; ++k) {
          p.push_back(buf.param(k)), g.push_back(buf.grad(k)), sq.push_back(buf.v[k].get());
          m.push_back(buf.m[k].get()), b.push_back(buf.b[k].get());
        }
        r.traffic = median_seconds(repeats, [&] {
          traffic_loop(v.buffers, dtype == rmsprop::DType::bf16, s.tensors, p.data(), g.data(),
                       sq.data(), m.data(), b.data(), long(s.elements), threads);
        });
        rows.push_back(r);
      }
    }
  }
  std::map<std::string, double> torch;
  if (st.torch) torch = measure_torch(st, shapes, repeats);
  std::size_t i = 0;
  for (rmsprop::DType dtype : kDTypes) {
    for (const VariantCase& v : kVariants) {
      for (const Shape& s : shapes) {
        Row& r = rows[i++];
        r.ours2 = measure_ours(v, s, dtype);
        auto find = [&](const std::string& mode) {
          auto it = torch.find(v.name + "/" + s.name + "/" +
                               std::string(rmsprop::to_string(dtype)) + "/" + mode);
          return it == torch.end() ? NAN : it->second;
        };
        r.torch_foreach = find("foreach");
        r.torch_single = find("single");
      }
    }
  }

  const std::string target(rmsprop::to_string(rmsprop::default_simd_target()));
  if (st.json) {
    std::printf(
        "{\"simd_target\": \"%s\", \"threads\": %d, \"roofline\": {\"copy_gbs\": %.3f, "
        "\"triad_gbs\": %.3f, \"inplace_update_gbs\": %.3f},\n \"cases\": [\n",
        target.c_str(), threads, roof.copy_gbs, roof.triad_gbs, roof.inplace_gbs);
  } else {
    std::printf(
        "SIMD target %s, %d threads; roofline (float32): copy %.2f GB/s, triad %.2f GB/s "
        "(STREAM byte counts), in-place update %.2f GB/s; %%roof: vs the same traffic with no "
        "math\n",
        target.c_str(), threads, roof.copy_gbs, roof.triad_gbs, roof.inplace_gbs);
    std::printf("%-18s %-9s %-10s %9s %7s %7s %6s %9s %8s %8s %8s %8s\n", "variant", "dtype",
                "shape", "ours s", "Gel/s", "GB/s", "%roof", "naive s", "ours/nv", "torch fe",
                "x fe", "x single");
  }
  for (std::size_t k = 0; k < rows.size(); ++k) {
    const Row& r = rows[k];
    const double ours = std::min(r.ours1, r.ours2);
    const double elements = double(r.tensors * r.elements);
    const double gels = elements / ours / 1e9, gbs = gels * double(r.bytes);
    const double roof_fraction = r.traffic / ours;  // throughput vs the traffic-only loop
    const double vs_naive = r.naive / ours;         // throughput ratio ours/naive
    if (st.json) {
      std::printf(
          "  {\"variant\": \"%s\", \"dtype\": \"%s\", \"tensors\": %zu, \"elements\": %zu, "
          "\"threads\": %d, \"seconds_per_step\": %.6g, \"seconds_per_step_runs\": [%.6g, %.6g], "
          "\"g_elements_per_s\": %.4g, \"gb_per_s\": %.4g, \"fraction_of_roofline\": %.4g, "
          "\"traffic_only_seconds\": %.6g, "
          "\"naive_loop_seconds\": %.6g, \"ours_over_naive_throughput\": %.4g, "
          "\"torch_foreach_seconds\": %s, \"torch_single_seconds\": %s, "
          "\"speedup_vs_torch_foreach\": %s, \"speedup_vs_torch_single\": %s}%s\n",
          r.variant.c_str(), std::string(rmsprop::to_string(r.dtype)).c_str(), r.tensors,
          r.elements, threads, ours, r.ours1, r.ours2, gels, gbs, roof_fraction, r.traffic, r.naive,
          vs_naive, json_number(r.torch_foreach).c_str(), json_number(r.torch_single).c_str(),
          json_number(r.torch_foreach / ours).c_str(), json_number(r.torch_single / ours).c_str(),
          k + 1 < rows.size() ? "," : "");
    } else {
      std::printf("%-18s %-9s %-10s %9.5f %7.2f %7.2f %5.0f%% %9.5f %8.2f %8.4f %8.2f %8.2f\n",
                  r.variant.c_str(), std::string(rmsprop::to_string(r.dtype)).c_str(),
                  r.shape.c_str(), ours, gels, gbs, 100 * roof_fraction, r.naive, vs_naive,
                  r.torch_foreach, r.torch_foreach / ours, r.torch_single / ours);
    }
  }
  // Issue 4's comparison: ours through the torch.optim.Optimizer interface, from Python.
  std::string python_rows = st.torch && !st.quick ? python_interface(st, threads, repeats) : "";
  if (st.json) {
    std::printf(" ],\n \"python_interface\": %s}\n",
                python_rows.empty() ? "null" : python_rows.c_str());
  } else if (!python_rows.empty()) {
    std::printf("\n%s", python_rows.c_str());
  }
  return 0;
} catch (const std::exception& e) {  // bad input, e.g. RMSPROP_SIMD naming no target here
  std::fprintf(stderr, "rmsprop-bench: %s\n", e.what());
  return 1;
}
