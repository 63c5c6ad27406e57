// rmsprop-cuda-bench: our fused CUDA step against the GPU's memory roofline, measured in the same
// run as a device-to-device copy (cudaMemcpyAsync) of the same number of bytes.
//
// For each shape (one tensor of 2^28 elements; 4096 tensors of 65536; 256 of 2^20: the same
// elements in fewer, larger tensors), variant (plain, momentum,
// centered), parameter type (float32, bfloat16) and state (float32; 8-bit, int8): the step's
// bytes moved (every buffer read once, every written buffer written once; 8-bit state: its
// codes and block scales), its time (median of CUDA-event timings), GB/s, that as a percentage
// of the copy's GB/s, and for 8-bit state its speed against float32 state's in this run.
// Options: --repeats N, --quick (2^24 elements and 256 tensors, for a check that it runs).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "rmsprop/cuda.hpp"
#include "rmsprop/kernel.hpp"
#include "rmsprop/state8.hpp"

namespace {

void ok(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
  }
}

__global__ void fill(float* x, std::size_t n, float scale, float shift, unsigned seed) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x) {
    unsigned h = unsigned(i) * 0x9E3779B9u + seed;
    h ^= h >> 15, h *= 0x2C1B3C6Du, h ^= h >> 12;
    x[i] = shift + scale * (float(h & 0xFFFFFF) / float(0x1000000) - 0.5f);
  }
}

// 8-bit state of tensors of n values each, `count` of them one after another: every code
// `code`, every block scale `scale` (the layout of NOTE: [8-bit state]).
__global__ void fill_state8(std::uint8_t* s, std::size_t count, std::size_t n, std::uint8_t code,
                            float scale) {
  const std::size_t bytes = rmsprop::state8_bytes(n), offset = rmsprop::state8_scales_offset(n);
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count * bytes;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t at = i % bytes;
    if (at < n) s[i] = code;
    if (at >= offset && (at - offset) % 4 == 0) *reinterpret_cast<float*>(s + i) = scale;
  }
}

__global__ void to_bf16(const float* x, std::uint16_t* y, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x) {
    y[i] = std::uint16_t(__float_as_uint(x[i]) >> 16);
  }
}

// Median milliseconds of `repeats` timed calls (after two warm-ups), with CUDA events.
template <class F>
double median_ms(int repeats, F f) {
  cudaEvent_t start, stop;
  ok(cudaEventCreate(&start), "cudaEventCreate");
  ok(cudaEventCreate(&stop), "cudaEventCreate");
  f(), f();
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    ok(cudaEventRecord(start), "cudaEventRecord");
    f();
    ok(cudaEventRecord(stop), "cudaEventRecord");
    ok(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    ok(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    times.push_back(ms);
  }
  cudaEventDestroy(start), cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

struct Case {
  const char* name;
  rmsprop::Options options;
};

std::vector<Case> cases() {
  rmsprop::Options plain, momentum, centered;
  momentum.momentum = 0.9;
  centered.centered = true, centered.momentum = 0.9;
  return {{"plain", plain}, {"momentum", momentum}, {"centered", centered}};
}

}  // namespace

int main(int argc, char** argv) {
  int repeats = 20;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--repeats") == 0 && i + 1 < argc) {
      repeats = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else {
      std::fprintf(stderr, "usage: rmsprop-cuda-bench [--repeats N] [--quick]\n");
      return 2;
    }
  }
  if (rmsprop::cuda::device_count() == 0) {
    std::fprintf(stderr, "rmsprop-cuda-bench: no CUDA device here\n");
    return 1;
  }
  try {
    cudaDeviceProp prop{};
    ok(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    std::printf("GPU: %s (sm_%d%d), %d repeats, median of CUDA-event timings\n", prop.name,
                prop.major, prop.minor, repeats);
    struct Shape {
      const char* name;
      std::size_t tensors, elements;
    };
    const std::vector<Shape> shapes =
        quick
            ? std::vector<Shape>{{"1 x 2^24", 1, std::size_t(1) << 24}, {"256 x 65536", 256, 65536}}
            : std::vector<Shape>{{"1 x 2^28", 1, std::size_t(1) << 28},
                                 {"4096 x 65536", 4096, 65536},
                                 {"256 x 2^20", 256, std::size_t(1) << 20}};
    std::printf("%-14s %-9s %-9s %-7s %9s %9s %9s %8s %9s\n", "shape", "variant", "params", "state",
                "ms", "GB/s", "copy GB/s", "% copy", "vs f32");
    for (const Shape& shape : shapes) {
      const std::size_t n = shape.tensors * shape.elements;
      // One allocation per buffer kind, tensors as consecutive slices (as a flat arena).
      std::vector<void*> buffers;
      auto alloc = [&](std::size_t bytes) {
        void* p = nullptr;
        ok(cudaMalloc(&p, bytes), "cudaMalloc");
        buffers.push_back(p);
        return p;
      };
      auto* p32 = static_cast<float*>(alloc(n * 4));
      auto* g32 = static_cast<float*>(alloc(n * 4));
      auto* v = static_cast<float*>(alloc(n * 4));
      auto* m = static_cast<float*>(alloc(n * 4));
      auto* b = static_cast<float*>(alloc(n * 4));
      auto* p16 = static_cast<std::uint16_t*>(alloc(n * 2));
      auto* g16 = static_cast<std::uint16_t*>(alloc(n * 2));
      fill<<<1024, 256>>>(p32, n, 2.0f, 0.0f, 1), fill<<<1024, 256>>>(g32, n, 2.0f, 0.0f, 2);
      fill<<<1024, 256>>>(v, n, 0.5f, 0.5f, 3), fill<<<1024, 256>>>(m, n, 0.1f, 0.0f, 4);
      fill<<<1024, 256>>>(b, n, 0.2f, 0.0f, 5);
      to_bf16<<<1024, 256>>>(p32, p16, n), to_bf16<<<1024, 256>>>(g32, g16, n);
      const std::size_t state8 = rmsprop::state8_bytes(shape.elements);
      std::uint8_t* codes[3];
      for (int k = 0; k < 3; ++k) {
        codes[k] = static_cast<std::uint8_t*>(alloc(shape.tensors * state8));
        // sqrt(v) ~ 0.75 (square_avg), ±0.1 (the signed buffers), as the float32 buffers
        fill_state8<<<1024, 256>>>(codes[k], shape.tensors, shape.elements, k == 0 ? 0x78 : 0x30,
                                   k == 0 ? 0.5f : 0.1f);
      }
      ok(cudaDeviceSynchronize(), "initializing buffers");

      for (const Case& c : cases()) {
        const rmsprop::Variant variant = rmsprop::variant_of(c.options);
        for (rmsprop::DType dtype : {rmsprop::DType::f32, rmsprop::DType::bf16}) {
          double f32_state_ms = 0;
          for (rmsprop::DType state : {rmsprop::DType::f32, rmsprop::DType::i8_block}) {
            const bool half = dtype == rmsprop::DType::bf16, eight = state != rmsprop::DType::f32;
            const rmsprop::Precision precision{dtype, state, false, false};
            std::vector<rmsprop::TensorTask> tasks;
            for (std::size_t t = 0; t < shape.tensors; ++t) {
              const std::size_t at = t * shape.elements;
              rmsprop::TensorTask task;
              task.param = half ? static_cast<void*>(p16 + at) : static_cast<void*>(p32 + at);
              task.grad =
                  half ? static_cast<const void*>(g16 + at) : static_cast<const void*>(g32 + at);
              if (eight) {
                task.square_avg = codes[0] + t * state8, task.grad_avg = codes[1] + t * state8;
                task.momentum_buffer = codes[2] + t * state8;
              } else {
                task.square_avg = v + at, task.grad_avg = m + at, task.momentum_buffer = b + at;
              }
              task.size = shape.elements;
              // lr 0 keeps the parameters where they are across repeats (this measures
              // traffic).
              task.coefficients = rmsprop::coefficients(c.options, 1, 0.0);
              tasks.push_back(task);
            }
            const double ms =
                median_ms(repeats, [&] { rmsprop::cuda::fused_step(variant, precision, tasks); });
            const std::size_t state_buffers =
                1 + variant.uses_grad_avg() + variant.uses_momentum_buffer();
            const double state_bytes =
                eight ? 2.0 * double(state8) / double(shape.elements) : 2.0 * 4;
            const double bytes =
                double(n) * (3 * rmsprop::size_of(dtype) + state_bytes * double(state_buffers));
            // The copy moves the same bytes: reads half of them, writes half.
            const std::size_t half_bytes = std::size_t(bytes / 2) / 4 * 4;
            void* src = alloc(half_bytes);
            void* dst = alloc(half_bytes);
            const double copy_ms = median_ms(repeats, [&] {
              ok(cudaMemcpyAsync(dst, src, half_bytes, cudaMemcpyDeviceToDevice), "copy");
            });
            cudaFree(src), cudaFree(dst), buffers.resize(buffers.size() - 2);
            const double gbs = bytes / (ms * 1e6), copy_gbs = 2.0 * half_bytes / (copy_ms * 1e6);
            if (!eight) f32_state_ms = ms;
            char versus[16] = "";
            if (eight) std::snprintf(versus, sizeof versus, "%.2fx", f32_state_ms / ms);
            std::printf("%-14s %-9s %-9s %-7s %9.3f %9.0f %9.0f %7.1f%% %9s\n", shape.name, c.name,
                        std::string(rmsprop::to_string(dtype)).c_str(), eight ? "int8" : "float32",
                        ms, gbs, copy_gbs, 100.0 * gbs / copy_gbs, versus);
          }
        }
      }
      for (void* p : buffers) cudaFree(p);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rmsprop-cuda-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
