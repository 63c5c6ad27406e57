// The CUDA backend against the CPU scalar reference, bitwise: every variant and precision, odd
// sizes around the chunk, unaligned views, long mixed lists; capturable steps, CUDA graphs,
// the device-side non-finite flag, streams and bad input.
//
// Every test needs a GPU and skips, saying so, where there is none (or where the library was
// built without CUDA, in which case one test checks that every entry point says that instead).
#include "rmsprop/cuda.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "kernel_buffers.hpp"
#include "rmsprop/error.hpp"
#include "rmsprop/state8.hpp"
#include "rmsprop/step_plan.hpp"
#include "test_util.hpp"

#if RMSPROP_HAS_CUDA
#include <cuda_runtime.h>

#include "gradient_kernel.hpp"
#endif

namespace rmsprop {
namespace {

#if !RMSPROP_HAS_CUDA

TEST(Cuda, WithoutTheBackendEveryEntryPointSaysSo) {
  std::printf("[ NOTE ] built without CUDA: the CUDA tests are not compiled in\n");
  EXPECT_FALSE(cuda::built());
  EXPECT_EQ(cuda::device_count(), 0);
  EXPECT_EQ(cuda::device_problem(), "this rmsprop was built without CUDA");
  EXPECT_THROW(cuda::fused_step(Variant{}, DType::f32, {}), cuda::NotBuiltWithCuda);
  EXPECT_THROW(cuda::capturable_step(Options{}, Precision{}, {}, {}, {}), cuda::NotBuiltWithCuda);
  std::int32_t flag = 0;
  EXPECT_THROW(cuda::flag_non_finite({}, &flag), cuda::NotBuiltWithCuda);
  EXPECT_THROW(cuda::copy_synchronously(&flag, &flag, 4, 0), cuda::NotBuiltWithCuda);
}

#else

using namespace testing;  // the kernel tests' buffers, precisions and variants

#define SKIP_WITHOUT_GPU()                                                                      \
  do {                                                                                          \
    if (cuda::device_count() == 0) {                                                            \
      GTEST_SKIP() << "no usable CUDA device (" << cuda::device_problem()                       \
                   << "): this GPU test did not run (run rmsprop_cuda_tests on a GPU machine)"; \
    }                                                                                           \
  } while (0)

void ok(cudaError_t status) {
  if (status != cudaSuccess) throw std::runtime_error(cudaGetErrorString(status));
}

struct DeviceFree {
  void operator()(void* p) const { cudaFree(p); }
};
using DeviceMemory = std::unique_ptr<std::byte, DeviceFree>;

DeviceMemory device_alloc(std::size_t bytes) {
  void* p = nullptr;
  ok(cudaMalloc(&p, bytes == 0 ? 1 : bytes));
  return DeviceMemory(static_cast<std::byte*>(p));
}

template <class T>
DeviceMemory device_value(const T& value) {
  DeviceMemory m = device_alloc(sizeof(T));
  ok(cudaMemcpy(m.get(), &value, sizeof(T), cudaMemcpyHostToDevice));
  return m;
}

template <class T>
T host_value(const void* device) {
  T value;
  ok(cudaMemcpy(&value, device, sizeof(T), cudaMemcpyDeviceToHost));
  return value;
}

// A device copy of a tensor's test buffers, at the same offsets (so the same alignment
// relative to a 256-byte-aligned allocation as the host's relative to its own).
class DeviceBuffers {
  template <class B>
  static auto fields(B& b) {
    return std::vector{&b.param, &b.grad, &b.square_avg, &b.grad_avg, &b.momentum, &b.master};
  }

 public:
  explicit DeviceBuffers(const Buffers& host) : precision_(host.precision), offset_(host.offset) {
    for (const auto* v : fields(host)) {
      memory_.push_back(device_alloc(v->size()));
      ok(cudaMemcpy(memory_.back().get(), v->data(), v->size(), cudaMemcpyHostToDevice));
    }
  }
  TensorTask task(const Buffers& host, const Options& o) {
    TensorTask t = const_cast<Buffers&>(host).task(o);  // the host's sizes and coefficients
    const DType types[] = {precision_.param, precision_.param, precision_.state,
                           precision_.state, precision_.state, DType::f32};
    void* at[6];
    for (int k = 0; k < 6; ++k) {  // 8-bit state starts its buffer, as on the host
      at[k] = memory_[k].get() + (types[k] == DType::i8_block ? 0 : offset_ * size_of(types[k]));
    }
    t.param = at[0], t.grad = at[1], t.square_avg = at[2], t.grad_avg = at[3];
    t.momentum_buffer = at[4], t.master = static_cast<float*>(at[5]);
    return t;
  }
  void copy_to(Buffers& host) const {
    auto list = fields(host);
    for (std::size_t k = 0; k < list.size(); ++k) {
      ok(cudaMemcpy(list[k]->data(), memory_[k].get(), list[k]->size(), cudaMemcpyDeviceToHost));
    }
  }

 private:
  Precision precision_;
  std::size_t offset_;
  std::vector<DeviceMemory> memory_;
};

// Which host kernel gives the expected bytes: the scalar reference, or (for the large cases,
// where the reference would take minutes) the fused CPU kernel, threads and SIMD, which
// tests/fused_kernel_test.cpp holds bitwise equal to the reference for every variant and
// precision.
enum class Oracle { reference, fused };

// Every canonical variant; under compute-sanitizer (tests/cuda/sanitize.sh sets
// RMSPROP_CUDA_TEST_VARIANTS=representative) the representative four, since the sanitizer
// instruments each of the 2310 kernels as it first runs (minutes): the access pattern is the
// same walk in every variant.
std::vector<Variant> swept_variants() {
  const char* only = std::getenv("RMSPROP_CUDA_TEST_VARIANTS");
  return only != nullptr && std::string(only) == "representative" ? representative_variants()
                                                                  : all_variants();
}

// Steps the same list of tensors (sizes, offsets, each tensor's own step count) with the
// host oracle and the CUDA kernel on `stream`, for each variant; identical bytes.
void compare(const Precision& precision, const std::vector<Variant>& variants,
             const std::vector<std::size_t>& sizes, const std::vector<std::size_t>& offsets,
             cudaStream_t stream = nullptr, Oracle oracle = Oracle::reference) {
  std::vector<Buffers> pristine;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    pristine.emplace_back(precision, sizes[k], offsets[k % offsets.size()], 100 + k);
  }
  for (const Variant& v : variants) {
    Options o = options_for(v);
    SCOPED_TRACE(describe(precision) + " variant " + std::to_string(kernels::index_of(v)));
    std::vector<Buffers> expected = pristine, actual = pristine;
    std::vector<DeviceBuffers> device;
    std::vector<TensorTask> host_tasks, device_tasks;
    for (std::size_t k = 0; k < sizes.size(); ++k) {
      device.emplace_back(pristine[k]);
      host_tasks.push_back(expected[k].task(o));
      device_tasks.push_back(device[k].task(pristine[k], o));
      // Steps differ per tensor (as after add_param_group), so launches hold several
      // coefficient sets.
      host_tasks[k].coefficients = device_tasks[k].coefficients = coefficients(o, 1 + k % 6, o.lr);
      host_tasks[k].rounding_seed = device_tasks[k].rounding_seed = 0xC0FFEE + std::uint32_t(k);
    }
    if (oracle == Oracle::fused) {
      fused_step(v, precision, host_tasks);
    } else {
      reference_step(v, precision, host_tasks);
    }
    cuda::fused_step(v, precision, device_tasks, stream);
    ok(cudaStreamSynchronize(stream));
    for (std::size_t k = 0; k < sizes.size(); ++k) {
      device[k].copy_to(actual[k]);
      ASSERT_TRUE(expected[k] == actual[k])
          << "tensor " << k << " of size " << sizes[k] << " at offset " << pristine[k].offset;
    }
  }
}

constexpr std::size_t kChunk = cuda::kChunkElements;

TEST(Cuda, ReportsTheDevice) {
  EXPECT_TRUE(cuda::built());
  SKIP_WITHOUT_GPU();
  cudaDeviceProp prop{};
  ok(cudaGetDeviceProperties(&prop, 0));
  std::printf("[ NOTE ] %d CUDA device(s); device 0: %s, sm_%d%d\n", cuda::device_count(),
              prop.name, prop.major, prop.minor);
}

TEST(Cuda, MatchesReferenceBitwiseForEveryVariantAndPrecisionAtOddSizes) {
  SKIP_WITHOUT_GPU();
  // Aligned (offset 0) and unaligned views, empty tensors, sizes around the chunk and the
  // 16-byte pack, all in one list.
  const std::vector<std::size_t> sizes = {0, 1, 3, 7, 17, kChunk - 1, kChunk, kChunk + 1};
  for (const Precision& p : supported_precisions()) compare(p, swept_variants(), sizes, {0, 1, 3});
}

TEST(Cuda, MatchesReferenceBitwiseOnATenMillionElementTensor) {
  SKIP_WITHOUT_GPU();
  for (const Precision& p : supported_precisions()) {
    compare(p, representative_variants(), {10'000'003}, {0}, nullptr, Oracle::fused);
  }
  compare(Precision::of(DType::f32), representative_variants(), {10'000'003}, {1}, nullptr,
          Oracle::fused);
}

TEST(Cuda, MatchesReferenceBitwiseOnLongMixedListsAcrossLaunches) {
  SKIP_WITHOUT_GPU();
  // 150 tensors (more than one launch's tensors), 1800+ chunks, empty ones among them.
  std::vector<std::size_t> sizes;
  for (std::size_t k = 0; k < 150; ++k) sizes.push_back((k * 7919) % 200000 + (k % 3));
  const Oracle fused = Oracle::fused;
  compare(Precision::of(DType::f32), swept_variants(), sizes, {0, 2, 0, 5}, nullptr, fused);
  compare({DType::bf16, DType::bf16, false, true}, representative_variants(), sizes, {0, 1},
          nullptr, fused);
  compare({DType::f16, DType::f32, true, false}, representative_variants(), sizes, {0, 3}, nullptr,
          fused);
}

TEST(Cuda, RunsOnTheStreamItIsGiven) {
  SKIP_WITHOUT_GPU();
  cudaStream_t stream = nullptr;
  ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  compare(Precision::of(DType::f32), representative_variants(), {kChunk * 3 + 5, 99}, {0, 1},
          stream);
  ok(cudaStreamDestroy(stream));
}

// One float32 tensor trained on the quadratic loss on the device.
struct Training {
  std::size_t n;
  DeviceMemory theta, target, grad, square_avg, grad_avg, momentum, step, lr, flag;
  explicit Training(std::size_t size, double learning_rate)
      : n(size),
        theta(device_alloc(n * 4)),
        target(device_alloc(n * 4)),
        grad(device_alloc(n * 4)),
        square_avg(device_alloc(n * 4)),
        grad_avg(device_alloc(n * 4)),
        momentum(device_alloc(n * 4)),
        step(device_value<std::int64_t>(0)),
        lr(device_value<double>(learning_rate)),
        flag(device_value<std::int32_t>(0)) {
    testing::SplitMix64 rng(7);
    std::vector<float> t(n), x(n), zero(n, 0.0f);
    for (std::size_t i = 0; i < n; ++i) x[i] = float(rng.uniform()), t[i] = float(rng.uniform());
    ok(cudaMemcpy(theta.get(), x.data(), n * 4, cudaMemcpyHostToDevice));
    ok(cudaMemcpy(target.get(), t.data(), n * 4, cudaMemcpyHostToDevice));
    for (auto* m : {&square_avg, &grad_avg, &momentum}) {
      ok(cudaMemcpy(m->get(), zero.data(), n * 4, cudaMemcpyHostToDevice));
    }
  }
  TensorTask task() const {
    TensorTask t;
    t.param = theta.get(), t.grad = grad.get(), t.square_avg = square_avg.get();
    t.grad_avg = grad_avg.get(), t.momentum_buffer = momentum.get(), t.size = n;
    return t;
  }
  // Gradient, the device-side non-finite check, the step: no host synchronisation.
  void step_on(const Options& o, cudaStream_t stream) {
    testing::quadratic_gradient(static_cast<float*>(static_cast<void*>(theta.get())),
                                static_cast<float*>(static_cast<void*>(target.get())),
                                static_cast<float*>(static_cast<void*>(grad.get())), n, stream);
    const ConstBuffer g{grad.get(), DType::f32, n};
    auto* f = reinterpret_cast<std::int32_t*>(flag.get());
    cuda::flag_non_finite({&g, 1}, f, stream);
    const TensorTask t = task();
    std::int64_t* counter = reinterpret_cast<std::int64_t*>(step.get());
    cuda::capturable_step(o, Precision::of(DType::f32), {&t, 1}, {&counter, 1},
                          {reinterpret_cast<const double*>(lr.get()), f}, stream);
  }
  std::vector<float> params() const {
    std::vector<float> out(n);
    ok(cudaMemcpy(out.data(), theta.get(), n * 4, cudaMemcpyDeviceToHost));
    return out;
  }
};

Options centered_momentum() {
  Options o;
  o.lr = 1e-3, o.centered = true, o.momentum = 0.9, o.weight_decay = 1e-4;
  return o;
}

// 8-bit state of a CUDA parameter, made from float32 state on the device and converted back
// (what a front end's first 8-bit step and a change of state_dtype do): the bytes the host
// makes from the same values.
TEST(Cuda, EightBitStateIsMadeAndConvertedThroughTheHostToTheHostsBytes) {
  SKIP_WITHOUT_GPU();
  const std::size_t n = 3 * kState8Block + 17;
  std::vector<float> param(n), old(n);
  for (std::size_t i = 0; i < n; ++i) param[i] = 0.1f * float(i % 13), old[i] = 1e-3f * float(i);
  DeviceMemory d_param = device_alloc(n * 4), d_old = device_alloc(n * 4);
  DeviceMemory d_made = device_alloc(state8_bytes(n)), d_back = device_alloc(n * 4);
  ok(cudaMemcpy(d_param.get(), param.data(), n * 4, cudaMemcpyHostToDevice));
  ok(cudaMemcpy(d_old.get(), old.data(), n * 4, cudaMemcpyHostToDevice));
  auto view = [&](void* p, void* state, DType dtype, Device device) {
    ParamView v;
    v.param = BufferView::of(p, DType::f32, n, device);
    v.state[std::size_t(Slot::square_avg)] = BufferView::of(state, dtype, n, device);
    return v;
  };
  StateRequest to8{0, Slot::square_avg, DType::i8_block, n};
  to8.init = StateRequest::Init::from_old;
  std::vector<std::uint8_t> expected(state8_bytes(n)), made(state8_bytes(n));
  initialize_state(to8, view(param.data(), old.data(), DType::f32, Device{}), expected.data());
  initialize_state(to8, view(d_param.get(), d_old.get(), DType::f32, Device::cuda(0)),
                   d_made.get());
  ok(cudaMemcpy(made.data(), d_made.get(), made.size(), cudaMemcpyDeviceToHost));
  EXPECT_EQ(made, expected);
  StateRequest to32{0, Slot::square_avg, DType::f32, n};
  to32.init = StateRequest::Init::from_old;
  std::vector<float> back_expected(n), back(n);
  initialize_state(to32, view(param.data(), expected.data(), DType::i8_block, Device{}),
                   back_expected.data());
  initialize_state(to32, view(d_param.get(), d_made.get(), DType::i8_block, Device::cuda(0)),
                   d_back.get());
  ok(cudaMemcpy(back.data(), d_back.get(), n * 4, cudaMemcpyDeviceToHost));
  EXPECT_EQ(back, back_expected);
}

TEST(Cuda, CapturableStepEqualsTheHostCoefficientStep) {
  SKIP_WITHOUT_GPU();
  const Options o = centered_momentum();  // no bias correction: bitwise
  const std::size_t n = 3 * kChunk + 11;
  Training capturable(n, o.lr), eager(n, o.lr);
  for (int s = 1; s <= 5; ++s) {
    capturable.step_on(o, nullptr);
    testing::quadratic_gradient(reinterpret_cast<float*>(eager.theta.get()),
                                reinterpret_cast<float*>(eager.target.get()),
                                reinterpret_cast<float*>(eager.grad.get()), n, nullptr);
    TensorTask t = eager.task();
    t.coefficients = coefficients(o, s, o.lr);
    cuda::fused_step(variant_of(o), DType::f32, {&t, 1});
  }
  EXPECT_EQ(host_value<std::int64_t>(capturable.step.get()), 5);
  EXPECT_EQ(capturable.params(), eager.params());
}

TEST(Cuda, GraphReplayedAHundredTimesEqualsAHundredEagerSteps) {
  SKIP_WITHOUT_GPU();
  Options o = centered_momentum();
  o.bias_correction = true;  // the step count matters every step
  const std::size_t n = 2 * kChunk + 3;
  Training graphed(n, o.lr), eager(n, o.lr);
  cudaStream_t stream = nullptr;
  ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  ok(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  graphed.step_on(o, stream);
  ok(cudaStreamEndCapture(stream, &graph));
  ok(cudaGraphInstantiate(&exec, graph, 0));
  for (int s = 0; s < 100; ++s) ok(cudaGraphLaunch(exec, stream));
  for (int s = 0; s < 100; ++s) eager.step_on(o, stream);
  ok(cudaStreamSynchronize(stream));
  EXPECT_EQ(host_value<std::int64_t>(graphed.step.get()), 100);
  EXPECT_EQ(host_value<std::int64_t>(eager.step.get()), 100);
  EXPECT_EQ(graphed.params(), eager.params());
  // And training did something: the loss fell.
  EXPECT_NE(graphed.params(), Training(n, o.lr).params());
  ok(cudaGraphExecDestroy(exec));
  ok(cudaGraphDestroy(graph));
  ok(cudaStreamDestroy(stream));
}

TEST(Cuda, ANonFiniteGradientSkipsTheStepOnTheDevice) {
  SKIP_WITHOUT_GPU();
  const Options o = centered_momentum();
  Training t(1000, o.lr);
  t.step_on(o, nullptr);
  const std::vector<float> before = t.params();
  // A NaN target makes the next gradient NaN at one element: flagged, the step is a no-op.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  ok(cudaMemcpy(t.target.get() + 4 * 777, &nan, 4, cudaMemcpyHostToDevice));
  t.step_on(o, nullptr);
  EXPECT_EQ(host_value<std::int32_t>(t.flag.get()), 1);
  EXPECT_EQ(host_value<std::int64_t>(t.step.get()), 1);
  EXPECT_EQ(t.params(), before);
  // fused_step honours the same flag.
  TensorTask task = t.task();
  task.coefficients = coefficients(o, 2, o.lr);
  cuda::fused_step(variant_of(o), DType::f32, {&task, 1}, nullptr,
                   reinterpret_cast<const std::int32_t*>(t.flag.get()));
  EXPECT_EQ(t.params(), before);
}

TEST(Cuda, FlagsNonFiniteValuesOfEveryDtypeAnywhere) {
  SKIP_WITHOUT_GPU();
  for (DType dtype : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
    for (std::size_t at : {std::size_t(0), kChunk - 1, kChunk, 3 * kChunk + 2}) {
      for (double bad :
           {std::numeric_limits<double>::quiet_NaN(), -std::numeric_limits<double>::infinity()}) {
        const std::size_t n = 3 * kChunk + 3;
        std::vector<std::byte> host(n * size_of(dtype));
        for (std::size_t i = 0; i < n; ++i) kernels::store_from_double(dtype, host.data(), i, 1.5);
        DeviceMemory clean = device_alloc(host.size());
        ok(cudaMemcpy(clean.get(), host.data(), host.size(), cudaMemcpyHostToDevice));
        kernels::store_from_double(dtype, host.data(), at, bad);
        DeviceMemory dirty = device_alloc(host.size());
        ok(cudaMemcpy(dirty.get(), host.data(), host.size(), cudaMemcpyHostToDevice));
        DeviceMemory flag = device_value<std::int32_t>(0);
        auto* f = reinterpret_cast<std::int32_t*>(flag.get());
        const ConstBuffer clean_list[] = {{clean.get(), dtype, n}, {clean.get(), dtype, 0}};
        cuda::flag_non_finite(clean_list, f);
        EXPECT_EQ(host_value<std::int32_t>(f), 0) << to_string(dtype);
        const ConstBuffer dirty_list[] = {{clean.get(), dtype, n}, {dirty.get(), dtype, n}};
        cuda::flag_non_finite(dirty_list, f);
        EXPECT_EQ(host_value<std::int32_t>(f), 1) << to_string(dtype) << " at " << at;
      }
    }
  }
}

TEST(Cuda, BadInputIsRefusedWithItsName) {
  SKIP_WITHOUT_GPU();
  std::vector<float> host(16);
  TensorTask t{host.data(), host.data(), host.data(), nullptr, nullptr, 16, {}};
  try {
    cuda::fused_step(Variant{}, DType::f32, {&t, 1});
    FAIL() << "a host buffer was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("not CUDA device memory"), std::string::npos) << e.what();
  }
  DeviceMemory d = device_alloc(64);
  TensorTask missing{d.get(), nullptr, d.get(), nullptr, nullptr, 16, {}};
  EXPECT_THROW(cuda::fused_step(Variant{}, DType::f32, {&missing, 1}), InvalidArgument);
  EXPECT_THROW(cuda::fused_step(Variant{}, Precision{DType::f64, DType::f32, false, false}, {}),
               InvalidArgument);
  TensorTask two[] = {{d.get(), d.get(), d.get(), nullptr, nullptr, 4, {}},
                      {d.get(), d.get(), d.get(), nullptr, nullptr, 4, {}}};
  DeviceMemory counter = device_value<std::int64_t>(0), lr = device_value<double>(0.1);
  std::int64_t* shared[] = {reinterpret_cast<std::int64_t*>(counter.get()),
                            reinterpret_cast<std::int64_t*>(counter.get())};
  const cuda::DeviceScalars scalars{reinterpret_cast<const double*>(lr.get()), nullptr};
  EXPECT_THROW(cuda::capturable_step(Options{}, Precision{}, two, shared, scalars),
               InvalidArgument);
  EXPECT_THROW(cuda::capturable_step(Options{}, Precision{}, two, {shared, 1}, scalars),
               InvalidArgument);
  EXPECT_THROW(cuda::capturable_step(Options{}, Precision{}, {two, 1}, {shared, 1}, {}),
               InvalidArgument);
  EXPECT_THROW(cuda::flag_non_finite({}, nullptr), InvalidArgument);
}

#endif  // RMSPROP_HAS_CUDA

}  // namespace
}  // namespace rmsprop
