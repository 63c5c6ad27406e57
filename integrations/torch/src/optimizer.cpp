#include <torch/optim/serialize.h>
#include <torch/torch.h>

#include <optional>
#include <string>

#include "rmsprop/cuda.hpp"
#include "rmsprop/error.hpp"
#include "rmsprop/torch.hpp"

// A libtorch built with CUDA has CUDA tensors and streams (CMake defines RMSPROP_TORCH_HAS_CUDA
// from TORCH_CUDA_LIBRARIES); Debian's is CPU only (its c10/cuda headers have no library behind
// them), and CUDA tensors cannot exist there.
#if defined(RMSPROP_TORCH_HAS_CUDA)
#include <c10/cuda/CUDAStream.h>
#endif

namespace rmsprop::torch {
namespace detail {

// A parameter that steps this time, checked, with the gradient the kernel reads.
struct Entry {
  ::torch::Tensor param, grad;
  DType dtype;
  std::size_t index;
  Precision precision{};
  RMSpropParamState* state = nullptr;
};

}  // namespace detail

namespace {

using detail::Entry;
using ::torch::Tensor;

// The key under which every core option is saved, as "name=value" strings.
constexpr const char* kCoreOptionsKey = "rmsprop_options";

std::optional<DType> dtype_of(const c10::ScalarType t) {
  switch (t) {
    case c10::kFloat:
      return DType::f32;
    case c10::kDouble:
      return DType::f64;
    case c10::kBFloat16:
      return DType::bf16;
    case c10::kHalf:
      return DType::f16;
    default:
      return std::nullopt;
  }
}

c10::ScalarType scalar_type_of(DType d) {
  switch (d) {
    case DType::f32:
      return c10::kFloat;
    case DType::f64:
      return c10::kDouble;
    case DType::bf16:
      return c10::kBFloat16;
    case DType::f16:
      return c10::kHalf;
  }
  return c10::kFloat;
}

std::string where(std::size_t group, std::size_t index) {
  return "rmsprop::torch::RMSprop: group " + std::to_string(group) + " parameter " +
         std::to_string(index);
}

Entry checked(const Tensor& p, std::size_t group, std::size_t index) {
  const Tensor& g = p.grad();
  auto at = [&] { return where(group, index); };  // built only for a message
  if (p.device() != g.device() || !(p.device().is_cpu() || p.device().is_cuda())) {
    throw InvalidArgument(at() + " is on " + p.device().str() + " with its gradient on " +
                          g.device().str() + ": both must be on the CPU or on one CUDA device");
  }
  if (p.device().is_cuda() && !cuda::built()) {
    throw InvalidArgument(at() + " is on " + p.device().str() +
                          " but this rmsprop was built without its CUDA backend");
  }
  if (g.is_sparse()) {
    throw InvalidArgument(at() + " has a sparse gradient: not supported (yet)");
  }
  if (p.layout() != c10::kStrided || g.layout() != c10::kStrided) {
    throw InvalidArgument(at() + ": only strided (dense) tensors are supported");
  }
  const auto dtype = dtype_of(p.scalar_type());
  if (!dtype) {
    throw InvalidArgument(at() + " has dtype " + std::string(c10::toString(p.scalar_type())) +
                          ": supported are float32, float64, bfloat16 and float16");
  }
  if (g.scalar_type() != p.scalar_type()) {
    throw InvalidArgument(at() + " is " + std::string(c10::toString(p.scalar_type())) +
                          " but its gradient is " + std::string(c10::toString(g.scalar_type())));
  }
  if (g.numel() != p.numel()) {
    throw InvalidArgument(at() + " has " + std::to_string(p.numel()) +
                          " elements but its gradient " + std::to_string(g.numel()));
  }
  if (!p.is_contiguous()) {
    throw InvalidArgument(at() + " is not contiguous (strides " + c10::str(p.strides()) +
                          "): the kernel updates its memory in place");
  }
  // The gradient is only read: a contiguous copy serves.
  return {p, g.contiguous(), *dtype, index};
}

// A state tensor the variant needs: the loaded one when it fits, else a new one.
void ensure(Tensor& t, bool needed, const Tensor& p, c10::ScalarType type, double fill,
            std::size_t group, std::size_t index, const char* name) {
  if (!needed) return;
  if (t.defined()) {
    if (t.numel() != p.numel() || t.scalar_type() != type || !t.is_contiguous() ||
        t.device() != p.device()) {
      throw InvalidArgument(
          where(group, index) + ": state '" + name + "' has " + std::to_string(t.numel()) +
          " elements of " + std::string(c10::toString(t.scalar_type())) + " on " +
          t.device().str() + ", expected " + std::to_string(p.numel()) + " contiguous " +
          std::string(c10::toString(type)) + " on " + p.device().str());
    }
    return;
  }
  t = ::torch::full_like(p, fill, ::torch::TensorOptions().dtype(type));
}

// The stream libtorch's CUDA work on `device` is queued on: the optimizer's kernels join it.
cuda::Stream current_stream([[maybe_unused]] c10::Device device) {
#if defined(RMSPROP_TORCH_HAS_CUDA)
  return c10::cuda::getCurrentCUDAStream(device.index()).stream();
#else
  return nullptr;
#endif
}

// The first non-finite value of CUDA gradients, as (index in the list, element): one
// device-side scan, then one read of its flag.
std::optional<std::pair<std::size_t, std::size_t>> find_non_finite_on_device(
    const std::vector<Entry>& entries, const std::vector<std::size_t>& on_device) {
  if (on_device.empty()) return std::nullopt;
  const c10::Device device = entries[on_device.front()].grad.device();
  Tensor flag = ::torch::zeros({1}, ::torch::TensorOptions().dtype(c10::kInt).device(device));
  std::vector<ConstBuffer> grads;
  for (std::size_t k : on_device) {
    const Tensor& g = entries[k].grad;
    grads.push_back({g.data_ptr(), entries[k].dtype, std::size_t(g.numel())});
  }
  c10::DeviceGuard guard(device);
  cuda::flag_non_finite(grads, flag.data_ptr<std::int32_t>(), current_stream(device));
  if (flag.item<std::int32_t>() == 0) return std::nullopt;
  for (std::size_t k : on_device) {  // rare: find the element with torch
    const Tensor bad = ::torch::nonzero(~::torch::isfinite(entries[k].grad.reshape(-1)));
    if (bad.numel() > 0) return std::make_pair(k, std::size_t(bad[0][0].item<std::int64_t>()));
  }
  return std::nullopt;
}

}  // namespace

RMSpropOptions::RMSpropOptions(double lr) : options_(Options::from_flavor(Flavor::torch)) {
  options_.lr = lr;
}

RMSpropOptions::RMSpropOptions(const Options& options) : options_(options) {}

RMSpropOptions& RMSpropOptions::set(std::string_view name, std::string_view value) {
  options_.set(name, value);
  return *this;
}

void RMSpropOptions::serialize(::torch::serialize::OutputArchive& archive) const {
  archive.write("lr", c10::IValue(options_.lr));
  archive.write("alpha", c10::IValue(options_.alpha));
  archive.write("eps", c10::IValue(options_.eps));
  archive.write("weight_decay", c10::IValue(options_.weight_decay));
  archive.write("momentum", c10::IValue(options_.momentum));
  archive.write("centered", c10::IValue(options_.centered));
  c10::List<std::string> pairs;
  for (const auto& [name, value] : options_.to_pairs()) pairs.push_back(name + "=" + value);
  archive.write(kCoreOptionsKey, c10::IValue(pairs));
}

void RMSpropOptions::serialize(::torch::serialize::InputArchive& archive) {
  c10::IValue pairs;
  if (archive.try_read(kCoreOptionsKey, pairs)) {
    std::vector<std::pair<std::string, std::string>> read;
    for (const c10::IValue& item : pairs.toListRef()) {
      const std::string& text = item.toStringRef();
      const auto eq = text.find('=');
      if (eq == std::string::npos) throw InvalidOption("saved option '" + text + "' has no '='");
      read.emplace_back(text.substr(0, eq), text.substr(eq + 1));
    }
    options_ = Options::from_pairs(read);
    return;
  }
  // Saved by torch::optim::RMSprop: its options are flavor "torch".
  options_ = Options::from_flavor(Flavor::torch);
  c10::IValue v;
  for (auto [key, field] : {std::pair{"lr", &options_.lr},
                            {"alpha", &options_.alpha},
                            {"eps", &options_.eps},
                            {"weight_decay", &options_.weight_decay},
                            {"momentum", &options_.momentum}}) {
    if (archive.try_read(key, v)) *field = v.toDouble();
  }
  if (archive.try_read("centered", v)) options_.centered = v.toBool();
}

// Undefined tensors are not written, as torch::optim::RMSpropParamState does.
void RMSpropParamState::serialize(::torch::serialize::OutputArchive& archive) const {
  archive.write("step", c10::IValue(step()));
  for (auto [name, tensor] : {std::pair{"square_avg", &square_avg()},
                              {"momentum_buffer", &momentum_buffer()},
                              {"grad_avg", &grad_avg()},
                              {"master", &master()}}) {
    if (tensor->defined()) archive.write(name, c10::IValue(*tensor));
  }
}

void RMSpropParamState::serialize(::torch::serialize::InputArchive& archive) {
  c10::IValue v;
  if (archive.try_read("step", v)) step(v.toInt());
  for (auto [name, tensor] : {std::pair{"square_avg", &square_avg()},
                              {"momentum_buffer", &momentum_buffer()},
                              {"grad_avg", &grad_avg()},
                              {"master", &master()}}) {
    if (archive.try_read(name, v)) *tensor = v.toTensor();
  }
}

RMSprop::RMSprop(std::vector<::torch::optim::OptimizerParamGroup> param_groups,
                 RMSpropOptions defaults)
    : Optimizer(std::move(param_groups), std::make_unique<RMSpropOptions>(defaults)) {
  for (const auto& group : this->param_groups()) {
    static_cast<const RMSpropOptions&>(group.options()).core().validate();
  }
}

Tensor RMSprop::step(LossClosure closure) {
  ::torch::NoGradGuard no_grad;
  Tensor loss;
  if (closure != nullptr) {
    ::torch::AutoGradMode enable_grad(true);
    loss = closure();
  }
  // Everything that can fail is checked before anything changes.
  std::vector<std::vector<Entry>> entries(param_groups().size());
  bool skip = false;
  for (std::size_t gi = 0; gi < param_groups().size(); ++gi) {
    const auto& group = param_groups()[gi];
    const Options& o = static_cast<const RMSpropOptions&>(group.options()).core();
    o.validate();
    std::vector<ConstBuffer> grads;
    std::vector<std::size_t> on_host, on_device;  // indices into entries[gi]
    for (std::size_t i = 0; i < group.params().size(); ++i) {
      const Tensor& p = group.params()[i];
      if (!p.grad().defined()) continue;
      entries[gi].push_back(checked(p, gi, i));
      Entry& e = entries[gi].back();
      e.precision = precision_for(e.dtype, o);
      e.state = &prepared_state(e, gi, o);
      if (e.param.device().is_cuda()) {
        on_device.push_back(entries[gi].size() - 1);
        continue;
      }
      on_host.push_back(entries[gi].size() - 1);
      grads.push_back({e.grad.data_ptr(), e.dtype, std::size_t(e.grad.numel())});
    }
    if (o.non_finite == NonFinitePolicy::propagate) continue;
    auto hit = find_non_finite(grads, kernel_.threads);
    if (hit) hit->first = on_host[hit->first];
    if (!hit) hit = find_non_finite_on_device(entries[gi], on_device);
    if (!hit) continue;
    if (o.non_finite == NonFinitePolicy::skip) {
      skip = true;
      continue;
    }
    const Entry& e = entries[gi][hit->first];
    throw NonFiniteError(
        "non-finite gradient in " + where(gi, e.index) + " at element " +
        std::to_string(hit->second) + ": " +
        std::to_string(e.grad.reshape(-1)[std::int64_t(hit->second)].item<double>()) +
        " (policy non_finite=error: nothing was changed)");
  }
  last_step_applied_ = !skip;
  if (skip) return loss;

  // One fused call per (precision, device): CPU tensors on the host kernel, each CUDA
  // device's on its current stream.
  struct Call {
    Precision precision;
    c10::Device device;
    std::vector<TensorTask> tasks;
  };
  std::vector<Call> calls;
  for (std::size_t gi = 0; gi < param_groups().size(); ++gi) {
    const Options& o = static_cast<const RMSpropOptions&>(param_groups()[gi].options()).core();
    const Variant v = variant_of(o);
    calls.clear();
    for (const Entry& e : entries[gi]) {
      const Precision precision = e.precision;
      RMSpropParamState& s = *e.state;
      s.step(s.step() + 1);
      TensorTask t;
      t.param = e.param.data_ptr();
      t.grad = e.grad.data_ptr();
      auto data = [](const Tensor& x) { return x.defined() ? x.data_ptr() : nullptr; };
      t.square_avg = data(s.square_avg());
      t.grad_avg = data(s.grad_avg());
      t.momentum_buffer = data(s.momentum_buffer());
      t.master = precision.master_weights ? s.master().data_ptr<float>() : nullptr;
      t.size = std::size_t(e.param.numel());
      t.coefficients = coefficients(o, s.step(), o.lr);
      t.rounding_seed = rounding_seed(gi, e.index, s.step());
      const c10::Device device = e.param.device();
      auto call = std::find_if(calls.begin(), calls.end(), [&](const Call& c) {
        return c.precision == precision && c.device == device;
      });
      if (call == calls.end()) call = calls.insert(calls.end(), {precision, device, {}});
      call->tasks.push_back(t);
    }
    for (const Call& call : calls) {
      if (call.device.is_cpu()) {
        fused_step(v, call.precision, call.tasks, kernel_);
      } else {
        c10::DeviceGuard guard(call.device);
        cuda::fused_step(v, call.precision, call.tasks, current_stream(call.device));
      }
    }
  }
  return loss;
}

RMSpropParamState& RMSprop::prepared_state(const Entry& e, std::size_t group, const Options& o) {
  auto& slot = state_[c10::guts::to_string(e.param.unsafeGetTensorImpl())];
  if (!slot) slot = std::make_unique<RMSpropParamState>();
  auto& s = static_cast<RMSpropParamState&>(*slot);
  const Variant v = variant_of(o);
  const auto state_type = scalar_type_of(e.precision.state);
  ensure(s.square_avg(), v.uses_square_avg(), e.param, state_type, o.initial_accumulator_value,
         group, e.index, "square_avg");
  ensure(s.grad_avg(), v.uses_grad_avg(), e.param, state_type, 0.0, group, e.index, "grad_avg");
  ensure(s.momentum_buffer(), v.uses_momentum_buffer(), e.param, state_type, 0.0, group, e.index,
         "momentum_buffer");
  if (e.precision.master_weights && !s.master().defined()) s.master(e.param.to(c10::kFloat));
  ensure(s.master(), e.precision.master_weights, e.param, c10::kFloat, 0.0, group, e.index,
         "master");
  return s;
}

void RMSprop::save(::torch::serialize::OutputArchive& archive) const {
  ::torch::optim::serialize<RMSpropParamState, RMSpropOptions>(archive, *this);
}

// libtorch's serialize() restores the state only; the groups' options are restored here too,
// so that a run resumes with the options it was saved with.
void RMSprop::load(::torch::serialize::InputArchive& archive) {
  ::torch::optim::serialize<RMSpropParamState, RMSpropOptions>(archive, *this);
  ::torch::serialize::InputArchive groups_archive;
  archive.read("param_groups", groups_archive);
  std::vector<
      std::pair<std::vector<std::string>, std::unique_ptr<::torch::optim::OptimizerOptions>>>
      saved;
  ::torch::optim::detail::serialize<RMSpropOptions>(groups_archive, saved);
  for (std::size_t i = 0; i < saved.size(); ++i) {
    static_cast<const RMSpropOptions&>(*saved[i].second).core().validate();
    param_groups()[i].set_options(std::move(saved[i].second));
  }
}

}  // namespace rmsprop::torch
