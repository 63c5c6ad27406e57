#include "rmsprop/step_plan.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/storage.hpp"
#include "rmsprop/cuda.hpp"
#include "rmsprop/error.hpp"
#include "text.hpp"

namespace rmsprop {
namespace {

std::string describe(const BufferView& b) {
  const std::string dtype =
      b.supported_dtype ? std::string(to_string(b.dtype)) : std::string(b.dtype_name);
  return std::to_string(b.size) + " " + dtype +
         (b.complex ? " (a complex buffer's real view)" : "") + " on " + b.device.str() +
         (b.contiguous ? "" : ", not contiguous");
}

// Which state slots a parameter of `precision` reads and writes under `variant`.
std::array<bool, kSlots> slots_used(const Variant& v, const Precision& precision) {
  return {v.uses_square_avg(), v.uses_grad_avg(), v.uses_momentum_buffer(),
          precision.master_weights};
}

DType slot_dtype(Slot slot, const Precision& precision) {
  return slot == Slot::master ? DType::f32 : precision.state;
}

void check_param(const ParamView& p, std::size_t group) {
  // the message is built only for a refusal: this runs for every parameter every step
  const auto at = [&] { return where(group, p.index); };
  if (!p.param.supported_dtype) {
    throw InvalidArgument(at() + " has dtype " + std::string(p.param.dtype_name) +
                          ": supported are " + dtype_names());
  }
  if (p.param.data == nullptr && p.param.size > 0) throw InvalidArgument(at() + ": data is null");
  if (p.param.device.kind == Device::Kind::other) {
    throw InvalidArgument(at() + " is on " + p.param.device.str() +
                          ": rmsprop steps tensors on the CPU or on a CUDA device");
  }
  if (p.param.device.kind == Device::Kind::cuda && !cuda::built()) {
    throw InvalidArgument(at() + " is on " + p.param.device.str() +
                          " but this rmsprop was built without its CUDA backend");
  }
  if (!p.param.contiguous) {
    throw InvalidArgument(at() + " is not contiguous (" + describe(p.param) +
                          "): the kernel updates its memory in place");
  }
  const BufferView& g = p.grad;
  // a row gradient's values are the front end's to check against the parameter's rows
  if (!g.supported_dtype || g.dtype != p.param.dtype || g.complex != p.param.complex ||
      (g.size != p.param.size && !p.rows) || !(g.device == p.param.device) || !g.contiguous) {
    throw InvalidArgument(
        at() + ": its gradient is " + describe(g) + ", expected " +
        describe(
            p.param.complex
                ? BufferView::complex_of(nullptr, p.param.dtype, p.param.size / 2, p.param.device)
                : BufferView::of(nullptr, p.param.dtype, p.param.size, p.param.device)));
  }
}

// A present state buffer: usable as it is (true), to be converted to the precision's dtype
// (false), or refused.
bool check_state(const BufferView& b, Slot slot, DType wanted, const ParamView& p,
                 std::size_t group) {
  BufferView expected = BufferView::of(nullptr, wanted, p.param.size, p.param.device);
  expected.complex = p.param.complex && slot != Slot::master;
  if (!b.supported_dtype || b.size != p.param.size || !(b.device == p.param.device) ||
      !b.contiguous || (b.complex != p.param.complex && slot != Slot::master)) {
    throw InvalidArgument(where(group, p.index) + ": state '" + std::string(to_string(slot)) +
                          "' is " + describe(b) + ", expected " + describe(expected));
  }
  return b.dtype == wanted;
}

std::string non_finite_message(std::size_t group, std::size_t index, const NonFiniteHit& hit) {
  return "non-finite gradient in " + where(group, index) + " at element " +
         std::to_string(hit.element) + ": " + format_double(hit.value) +
         " (policy non_finite=error: nothing was changed)";
}

void launch(const DeviceHooks& hooks, Device device, const std::function<void(void*)>& body) {
  if (!hooks.launch) {
    throw InvalidArgument("tensors on " + device.str() + " but the front end gave no launch hook");
  }
  hooks.launch(device, body);
}

// The gradients of `g` on `device`, with their parameters' indices in the group.
std::pair<std::vector<ConstBuffer>, std::vector<std::size_t>> device_gradients(const GroupView& g,
                                                                               Device device) {
  std::pair<std::vector<ConstBuffer>, std::vector<std::size_t>> out;
  for (const ParamView& p : g.params) {
    if (p.grad.data == nullptr || !(p.grad.device == device)) continue;
    out.first.push_back({p.grad.data, p.grad.dtype, p.grad.size});
    out.second.push_back(p.index);
  }
  return out;
}

// The first non-finite gradient of a group, as (the parameter's index in the group, hit):
// host gradients in one threaded scan, each device's through the front end's hook.
std::optional<std::pair<std::size_t, NonFiniteHit>> find_non_finite_gradient(
    const GroupView& g, const KernelConfig& config, const DeviceHooks& hooks) {
  std::vector<ConstBuffer> host;
  std::vector<std::size_t> host_index;
  std::vector<Device> devices;
  for (const ParamView& p : g.params) {
    if (p.grad.data == nullptr) continue;
    if (p.grad.device.kind == Device::Kind::cpu) {
      host.push_back({p.grad.data, p.grad.dtype, p.grad.size});
      host_index.push_back(p.index);
    } else if (std::find(devices.begin(), devices.end(), p.grad.device) == devices.end()) {
      devices.push_back(p.grad.device);
    }
  }
  if (const auto hit = find_non_finite(host, config.threads)) {
    const ConstBuffer& b = host[hit->first];
    return std::make_pair(host_index[hit->first],
                          NonFiniteHit{hit->first, hit->second,
                                       kernels::load_as_double(b.dtype, b.data, hit->second)});
  }
  for (const Device& device : devices) {
    const auto found = device_gradients(g, device);  // not a structured binding: clang 14
    std::optional<cuda::NonFiniteValue> hit;         // cannot capture one in a lambda
    launch(hooks, device, [&](void* stream) { hit = cuda::find_non_finite(found.first, stream); });
    if (hit)
      return std::make_pair(found.second[hit->buffer],
                            NonFiniteHit{hit->buffer, hit->element, hit->value});
  }
  return std::nullopt;
}

// A capturable group's rules: one CUDA device, a device step count per parameter, and a
// non-finite policy decided on the device.
void check_capturable(const GroupView& g) {
  const std::string at = "group " + std::to_string(g.group);
  const Options& o = *g.options;
  if (o.non_finite == NonFinitePolicy::error) {
    throw InvalidOption(at +
                        " is capturable with non_finite=error: raising needs a host read of "
                        "every step's gradients; use non_finite=skip (decided on the device) "
                        "or propagate");
  }
  if (o.non_finite == NonFinitePolicy::skip && g.device_skip == nullptr) {
    throw InvalidArgument(at + " is capturable with non_finite=skip but has no device flag");
  }
  const ParamView* first = nullptr;
  for (const ParamView& p : g.params) {
    if (p.grad.data == nullptr) continue;
    if (p.rows) {
      throw InvalidArgument(where(g.group, p.index) +
                            " has a sparse gradient: a capturable group steps dense ones only");
    }
    if (p.param.device.kind != Device::Kind::cuda) {
      throw InvalidArgument(where(g.group, p.index) + " is on " + p.param.device.str() +
                            ": a capturable group steps CUDA tensors only");
    }
    if (first != nullptr && !(p.param.device == first->param.device)) {
      throw InvalidArgument(where(g.group, p.index) + " is on " + p.param.device.str() +
                            ", parameter " + std::to_string(first->index) + " on " +
                            first->param.device.str() +
                            ": a capturable group's parameters share one device");
    }
    if (p.device_step == nullptr) {
      throw InvalidArgument(where(g.group, p.index) + " has no device step count (capturable)");
    }
    if (first == nullptr) first = &p;
  }
}

}  // namespace

std::string step_count_problem(std::int64_t count) {
  if (count < 0) return "a negative step count " + std::to_string(count);
  if (count > kMaxStepCount) {
    return "a step count of " + std::to_string(count) + ", past the most this library counts (" +
           std::to_string(kMaxStepCount) + " = 2^53, the largest a double holds exactly)";
  }
  return "";
}

void* unread_data() {
  static std::max_align_t unread;
  return &unread;
}

std::string Device::str() const {
  switch (kind) {
    case Kind::cpu:
      return "cpu";
    case Kind::cuda:
      return "cuda:" + std::to_string(index);
    case Kind::other:
      break;
  }
  return std::string(name);
}

std::string_view to_string(Slot slot) {
  switch (slot) {
    case Slot::square_avg:
      return "square_avg";
    case Slot::grad_avg:
      return "grad_avg";
    case Slot::momentum_buffer:
      return "momentum_buffer";
    case Slot::master:
      return "master_weights";
  }
  return "?";
}

std::string precision_problem(DType dtype, const Options& o, std::size_t size) {
  if (dtype == DType::f64 && o.state_dtype != StateDType::float32) {
    return "float64 parameters keep float64 state; state_dtype=" +
           std::string(to_string(o.state_dtype)) + " is for float32 and 16-bit parameters";
  }
  if (dtype == DType::f16 && o.stochastic_rounding) {
    return "stochastic_rounding is for bfloat16 parameters, not float16";
  }
  if (!precision_for(dtype, o, size).supported()) {
    try {
      check_precision(precision_for(dtype, o, size));
    } catch (const InvalidArgument& e) {
      return e.what();
    }
  }
  return "";
}

namespace {

void initialize_host_state(const StateRequest& r, const ParamView& p, void* buffer) {
  const BufferView& old = p.state[std::size_t(r.slot)];
  const bool square_avg = r.slot == Slot::square_avg;
  // a chunk at a time (whole 8-bit blocks): no copy of the whole buffer in doubles
  std::vector<double> values(std::min(r.size, kChunkElements));
  for (std::size_t begin = 0; begin < r.size; begin += kChunkElements) {
    const std::span<double> chunk(values.data(), std::min(kChunkElements, r.size - begin));
    if (r.init == StateRequest::Init::from_param) {
      kernels::load_state_range(p.param.dtype, false, p.param.data, r.size, begin, chunk);
    } else if (r.init == StateRequest::Init::from_old) {
      kernels::load_state_range(old.dtype, square_avg, old.data, r.size, begin, chunk);
    } else {
      std::fill(chunk.begin(), chunk.end(), r.value);
    }
    kernels::store_state_range(r.dtype, square_avg, buffer, r.size, begin, chunk);
  }
}

// A CUDA parameter's state, made on the host from host copies of what it is made from, then
// copied to `buffer` (rare: a tensor's first step or a change of state dtype; front ends call
// this for 8-bit state, which only the core encodes).
void initialize_device_state(const StateRequest& r, const ParamView& p, void* buffer) {
  const int device = p.param.device.index;
  auto to_host = [&](BufferView& view) {
    std::vector<std::byte> copy(storage_bytes(view.dtype, r.size));
    cuda::copy_synchronously(copy.data(), view.data, copy.size(), device);
    view.data = copy.data();
    view.device = Device{};
    return copy;
  };
  ParamView host = p;
  std::vector<std::byte> param, old;
  if (r.init == StateRequest::Init::from_param) param = to_host(host.param);
  if (r.init == StateRequest::Init::from_old) old = to_host(host.state[std::size_t(r.slot)]);
  std::vector<std::byte> made(storage_bytes(r.dtype, r.size));
  initialize_host_state(r, host, made.data());
  cuda::copy_synchronously(buffer, made.data(), made.size(), device);
}

}  // namespace

void initialize_state(const StateRequest& r, const ParamView& p, void* buffer) {
  if (p.param.device.kind == Device::Kind::cuda) return initialize_device_state(r, p, buffer);
  initialize_host_state(r, p, buffer);
}

StepPlan::StepPlan(std::span<const GroupView> groups, const KernelConfig& config,
                   const DeviceHooks& hooks) {
  requests_.resize(groups.size());
  precisions_.resize(groups.size());
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    const GroupView& g = groups[gi];
    const Options& o = *g.options;
    o.validate();
    if (!(g.lr >= 0) || !std::isfinite(g.lr)) {
      throw InvalidOption("invalid learning rate " + format_double(g.lr) + " in group " +
                          std::to_string(g.group) + ": must be finite and >= 0");
    }
    if (g.device_lr != nullptr) check_capturable(g);
    const Variant v = variant_of(o);
    for (const ParamView& p : g.params) {
      precisions_[gi].push_back(Precision{});
      if (p.grad.data == nullptr) continue;
      check_param(p, g.group);
      // this step is counted by run(); a capturable group's count is on the device
      if (g.device_lr == nullptr && (p.step < 0 || p.step >= kMaxStepCount)) {
        throw InvalidArgument(where(g.group, p.index) + " has " +
                              (p.step < 0 ? step_count_problem(p.step)
                                          : "taken " + std::to_string(p.step) +
                                                " steps, the most this library counts (2^53)"));
      }
      if (const std::string problem = precision_problem(p.param.dtype, o, p.param.size);
          !problem.empty()) {
        throw InvalidArgument(where(g.group, p.index) + ": " + problem);
      }
      const Precision precision = precision_for(p.param.dtype, o, p.param.size);
      if (p.param.complex && precision.state != p.param.dtype) {
        throw InvalidArgument(where(g.group, p.index) + " is complex: its state is complex " +
                              "in its own precision (state_dtype=float32), not state_dtype=" +
                              std::string(to_string(o.state_dtype)));
      }
      if (precision.state == DType::i8_block && p.rows) {
        throw InvalidArgument(where(g.group, p.index) +
                              ": state_dtype=int8 with a row (sparse) gradient is not supported "
                              "yet (8-bit state steps dense tensors; state8_min_size keeps "
                              "smaller tensors in float32)");
      }
      if (precision.state == DType::i8_block && !g.holds_state8) {
        throw InvalidArgument(where(g.group, p.index) +
                              ": state_dtype=int8 is not available from this front end (the "
                              "optimizers hold 8-bit state: rmsprop::Optimizer, "
                              "rmsprop::torch::RMSprop, rmsprop.RMSprop, rmsprop.torch.RMSprop)");
      }
      precisions_[gi].back() = precision;
      ++stepping_;
      if (p.param.size == 0) continue;  // nothing to read or write
      const auto used = slots_used(v, precision);
      for (std::size_t s = 0; s < kSlots; ++s) {
        const Slot slot = Slot(s);
        const DType dtype = slot_dtype(slot, precision);
        const BufferView& b = p.state[s];
        // state this variant does not use is kept, in the state dtype (a later step may use
        // it again); an unused master copy is left alone
        if (!used[s] && (b.data == nullptr || slot == Slot::master)) continue;
        StateRequest r{std::size_t(&p - g.params.data()), slot, dtype, p.param.size};
        if (b.data != nullptr) {
          if (check_state(b, slot, dtype, p, g.group)) continue;
          r.init = StateRequest::Init::from_old;
        } else if (slot == Slot::master) {
          r.init = StateRequest::Init::from_param;
        } else if (slot == Slot::square_avg) {
          r.value = o.initial_accumulator_value;
        }
        requests_[gi].push_back(r);
      }
    }
  }
  // The non-finite policies, after every other check: a refused step names the first
  // problem, whatever it is, and changes nothing. Capturable groups flag theirs on the device
  // (queued before any kernel of the step).
  for (const GroupView& g : groups) {
    if (g.options->non_finite == NonFinitePolicy::propagate || g.device_lr != nullptr) continue;
    const auto hit = find_non_finite_gradient(g, config, hooks);
    if (!hit) continue;
    if (g.options->non_finite == NonFinitePolicy::error) {
      throw NonFiniteError(non_finite_message(g.group, hit->first, hit->second));
    }
    skipped_ = true;
  }
  if (skipped_) {
    for (auto& r : requests_) r.clear();
    for (const GroupView& g : groups) {  // the rare path: count the parameters concerned
      for (const ParamView& p : g.params) {
        if (p.grad.data != nullptr && p.grad.device.kind == Device::Kind::cpu)
          non_finite_ += find_non_finite(p.grad.dtype, p.grad.data, p.grad.size, nullptr);
      }
    }
    return;
  }
  for (const GroupView& g : groups) {
    if (g.device_lr == nullptr || g.options->non_finite != NonFinitePolicy::skip) continue;
    for (const ParamView& p : g.params) {
      if (p.grad.data == nullptr) continue;
      const auto on_device = device_gradients(g, p.grad.device).first;
      launch(hooks, p.grad.device,
             [&](void* stream) { cuda::flag_non_finite(on_device, g.device_skip, stream); });
      break;  // one device per capturable group
    }
  }
}

void StepPlan::run(std::span<const GroupView> groups, const KernelConfig& config,
                   const DeviceHooks& hooks) const {
  if (skipped_) return;
  if (groups.size() != precisions_.size()) {
    throw InvalidArgument("StepPlan::run: " + std::to_string(groups.size()) +
                          " groups for a plan of " + std::to_string(precisions_.size()));
  }
  // The front end's state, checked again: a missing or misfit buffer is an error, never a
  // wild pointer in a kernel.
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    const GroupView& g = groups[gi];
    const Variant v = variant_of(*g.options);
    for (std::size_t k = 0; k < g.params.size(); ++k) {
      const ParamView& p = g.params[k];
      if (p.grad.data == nullptr || p.param.size == 0) continue;
      const auto used = slots_used(v, precisions_[gi][k]);
      for (std::size_t s = 0; s < kSlots; ++s) {
        if (!used[s]) continue;
        const DType dtype = slot_dtype(Slot(s), precisions_[gi][k]);
        if (p.state[s].data == nullptr || !check_state(p.state[s], Slot(s), dtype, p, g.group)) {
          throw InvalidArgument(where(g.group, p.index) + ": state '" +
                                std::string(to_string(Slot(s))) + "' was not provided as " +
                                std::string(to_string(dtype)) + " before the step");
        }
      }
    }
  }
  struct Call {
    Precision precision;
    Device device;
    std::vector<TensorTask> tasks;
    std::vector<std::int64_t*> steps;  // capturable: the device step counts
  };
  std::vector<Call> calls;
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    const GroupView& g = groups[gi];
    const Variant v = variant_of(*g.options);
    const CoefficientRecipe recipe = coefficient_recipe(*g.options);
    // parameters mostly share their step count: its coefficients are computed once
    std::int64_t last_step = -1;
    Coefficients<double> last{};
    calls.clear();
    const bool capturable = g.device_lr != nullptr;
    for (std::size_t k = 0; k < g.params.size(); ++k) {
      ParamView& p = g.params[k];
      if (p.grad.data == nullptr) continue;
      if (!capturable) ++p.step;
      if (p.rows) continue;  // the front end's row kernel
      const Precision& precision = precisions_[gi][k];
      TensorTask t;
      t.param = p.param.data;
      t.grad = p.grad.data;
      t.square_avg = p.state[std::size_t(Slot::square_avg)].data;
      t.grad_avg = p.state[std::size_t(Slot::grad_avg)].data;
      t.momentum_buffer = p.state[std::size_t(Slot::momentum_buffer)].data;
      t.master = precision.master_weights
                     ? static_cast<float*>(p.state[std::size_t(Slot::master)].data)
                     : nullptr;
      t.size = p.param.size;
      // capturable: the device counts the step, derives the coefficients and mixes the
      // step into the seed
      if (!capturable && p.step != last_step) last = recipe.at(p.step, g.lr), last_step = p.step;
      t.coefficients = capturable ? Coefficients<double>{} : last;
      t.rounding_seed = rounding_seed(g.group, p.index, capturable ? 0 : p.step);
      auto call = std::find_if(calls.begin(), calls.end(), [&](const Call& c) {
        return c.precision == precision && c.device == p.param.device;
      });
      if (call == calls.end())
        call = calls.insert(calls.end(), {precision, p.param.device, {}, {}});
      call->tasks.push_back(t);
      call->steps.push_back(p.device_step);
    }
    for (const Call& call : calls) {
      if (call.device.kind == Device::Kind::cpu) {
        fused_step(v, call.precision, call.tasks, config);
      } else {
        launch(hooks, call.device, [&](void* stream) {
          if (capturable) {
            const bool skip = g.options->non_finite == NonFinitePolicy::skip;
            cuda::capturable_step(*g.options, call.precision, call.tasks, call.steps,
                                  {g.device_lr, skip ? g.device_skip : nullptr}, stream);
          } else {
            cuda::fused_step(v, call.precision, call.tasks, stream);
          }
        });
      }
    }
  }
}

}  // namespace rmsprop
