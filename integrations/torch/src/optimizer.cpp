#include <torch/optim/serialize.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "rmsprop/cuda.hpp"
#include "rmsprop/error.hpp"
#include "rmsprop/step_plan.hpp"
#include "rmsprop/torch.hpp"

// A libtorch built with CUDA has CUDA tensors and streams (CMake defines RMSPROP_TORCH_HAS_CUDA
// from TORCH_CUDA_LIBRARIES); Debian's is CPU only (its c10/cuda headers have no library behind
// them), and CUDA tensors cannot exist there.
#if defined(RMSPROP_TORCH_HAS_CUDA)
#include <c10/cuda/CUDAStream.h>
#endif

namespace rmsprop::torch {
namespace {

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

// "group 1, parameter 3", as the core names a parameter.
std::string where_of(std::size_t group, std::size_t index) {
  return "group " + std::to_string(group) + ", parameter " + std::to_string(index);
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
    case DType::i8_block:
      return c10::kByte;  // 8-bit state: its codes and scales as bytes
  }
  return c10::kFloat;
}

// A tensor as the planner sees it (see NOTE: [step planner]).
BufferView view_of(const Tensor& t) {
  BufferView v;
  if (!t.defined()) return v;
  const auto dtype = dtype_of(t.scalar_type());
  v.data = t.data_ptr();
  v.dtype = dtype.value_or(DType::f32);
  v.supported_dtype = dtype.has_value();
  v.dtype_name = v.supported_dtype ? "" : c10::toString(t.scalar_type());
  v.size = std::size_t(t.numel());
  if (t.is_complex()) {  // its real view (kComplexDTypes)
    v.dtype = t.scalar_type() == c10::kComplexDouble ? DType::f64 : DType::f32;
    v.supported_dtype =
        t.scalar_type() == c10::kComplexDouble || t.scalar_type() == c10::kComplexFloat;
    v.complex = v.supported_dtype;
    if (v.complex) v.size *= 2, v.dtype_name = "";
  }
  static std::set<std::string> names;  // lasting copies of c10's device names
  const std::string& name =
      *names.insert(c10::DeviceTypeName(t.device().type(), /*lower_case=*/true)).first;
  v.device = t.device().is_cuda()  ? Device::cuda(t.device().index())
             : t.device().is_cpu() ? Device{}
                                   : Device::other(int(t.device().type()), name);
  v.contiguous = t.is_contiguous();
  // an empty (or meta) tensor's data may be null, which the planner reads as absent
  if (v.data == nullptr && (v.size == 0 || v.device.kind == Device::Kind::other)) {
    v.data = unread_data();
  }
  return v;
}

// A state tensor: as view_of, except that a uint8 tensor is 8-bit state, its bytes holding the
// parameter's `size` values (NOTE: [8-bit state] in rmsprop/state8.hpp).
BufferView state_view_of(const Tensor& t, std::size_t size) {
  BufferView v = view_of(t);
  if (t.defined() && t.scalar_type() == c10::kByte) {
    v.dtype = DType::i8_block;
    v.supported_dtype = true;
    v.dtype_name = "";
    v.size = state_values_in(DType::i8_block, std::size_t(t.numel()), size);
  }
  return v;
}

c10::Device torch_device(const Device& d) {
  return d.kind == Device::Kind::cpu ? c10::Device(c10::kCPU)
                                     : c10::Device(c10::kCUDA, c10::DeviceIndex(d.index));
}

// The stream libtorch's CUDA work on `device` is queued on: the optimizer's kernels join it.
cuda::Stream current_stream([[maybe_unused]] c10::Device device) {
#if defined(RMSPROP_TORCH_HAS_CUDA)
  return c10::cuda::getCurrentCUDAStream(device.index()).stream();
#else
  return nullptr;
#endif
}

// The planner's CUDA hook: its scans and kernels queued on libtorch's current stream.
DeviceHooks cuda_hooks() {
  DeviceHooks hooks;
  hooks.launch = [](Device where, const std::function<void(void*)>& body) {
    const c10::Device device = torch_device(where);
    c10::DeviceGuard guard(device);
    body(current_stream(device));
  };
  return hooks;
}

// A new state tensor as the planner asks for it. 8-bit state, made or converted from, is
// encoded and decoded by the core (initialize_state, on the host; a CUDA tensor's through host
// copies).
Tensor make_state(const StateRequest& r, const Tensor& param, const Tensor& old,
                  const ParamView& view) {
  const auto type = scalar_type_of(r.dtype);
  if (r.dtype == DType::i8_block || (old.defined() && old.scalar_type() == c10::kByte)) {
    const auto options = ::torch::TensorOptions().dtype(type).device(param.device());
    Tensor t = r.dtype == DType::i8_block
                   ? ::torch::empty({std::int64_t(storage_bytes(r.dtype, r.size))}, options)
                   : ::torch::empty(param.sizes(), options);
    initialize_state(r, view, t.data_ptr());
    return t;
  }
  if (param.is_complex()) {  // complex state, stepped as its real view as the parameter is
    const auto complex = r.dtype == DType::f64 ? c10::kComplexDouble : c10::kComplexFloat;
    if (r.init != StateRequest::Init::value) {
      return old.to(complex, false, true, c10::MemoryFormat::Contiguous);
    }
    Tensor t = ::torch::empty_like(param, ::torch::TensorOptions().dtype(complex),
                                   c10::MemoryFormat::Contiguous);
    at::view_as_real(t).fill_(r.value);
    return t;
  }
  switch (r.init) {
    case StateRequest::Init::value:
      return ::torch::full_like(param, r.value, ::torch::TensorOptions().dtype(type),
                                c10::MemoryFormat::Contiguous);
    case StateRequest::Init::from_param:
      return param.detach().to(type, /*non_blocking=*/false, /*copy=*/true,
                               c10::MemoryFormat::Contiguous);
    case StateRequest::Init::from_old:
      break;
  }
  return old.to(type, false, true, c10::MemoryFormat::Contiguous);
}

Tensor& slot_of(RMSpropParamState& s, Slot slot) {
  switch (slot) {
    case Slot::square_avg:
      return s.square_avg();
    case Slot::grad_avg:
      return s.grad_avg();
    case Slot::momentum_buffer:
      return s.momentum_buffer();
    case Slot::master:
      break;
  }
  return s.master();
}

template <class Key>
Key key_of(void* impl) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream text;  // what libtorch 1.x's own optimizers write (c10::guts::to_string)
    text << impl;
    return text.str();
  } else {
    return Key(impl);
  }
}

}  // namespace

StateKey state_key(const Tensor& param) {
  return key_of<StateKey>(param.unsafeGetTensorImpl());
}

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
    : Optimizer(std::vector<::torch::optim::OptimizerParamGroup>{},
                std::make_unique<RMSpropOptions>(defaults)) {
  defaults.core().validate();
  for (const auto& group : param_groups) add_param_group(group);
}

void RMSprop::add_param_group(const ::torch::optim::OptimizerParamGroup& group) {
  const auto* own =
      group.has_options() ? dynamic_cast<const RMSpropOptions*>(&group.options()) : nullptr;
  if (group.has_options() && own == nullptr) {
    throw InvalidOption("parameter group " + std::to_string(param_groups().size()) +
                        ": its options are not rmsprop::torch::RMSpropOptions");
  }
  if (own != nullptr) own->core().validate();
  Optimizer::add_param_group(group);
  // libtorch 2.x after 2.6 rebuilds a group's options from the defaults for an optimizer it
  // does not know (its merge covers its own option types only): keep the group's own.
  if (own != nullptr) param_groups().back().set_options(group.options().clone());
}

Tensor RMSprop::step(LossClosure closure) {
  ::torch::NoGradGuard no_grad;
  Tensor loss;
  if (closure != nullptr) {
    ::torch::AutoGradMode enable_grad(true);
    loss = closure();
  }
  // The tensors as the planner's views; nothing is created or changed until it has checked
  // everything (see NOTE: [step planner]).
  const std::size_t n = param_groups().size();
  std::vector<std::vector<ParamView>> views(n);
  std::vector<std::vector<Tensor>> params(n), grads(n), staged(n);  // what the views point into
  std::vector<GroupView> groups;
  for (std::size_t gi = 0; gi < n; ++gi) {
    const auto& group = param_groups()[gi];
    const Options& o = static_cast<const RMSpropOptions&>(group.options()).core();
    for (std::size_t i = 0; i < group.params().size(); ++i) {
      const Tensor& p = group.params()[i];
      const Tensor& g = p.grad();
      if (!g.defined()) continue;
      if (g.is_sparse() || p.layout() != c10::kStrided || g.layout() != c10::kStrided) {
        throw InvalidArgument(where_of(gi, i) +
                              (g.is_sparse() ? " has a sparse gradient: not supported (yet)"
                                             : ": only strided (dense) tensors are supported"));
      }
      params[gi].push_back(p);
      // NOTE: [strided parameters] (python/src/torch_stepper.cpp): a strided parameter steps
      // in a contiguous copy, copied back after the kernels
      staged[gi].push_back(p.is_contiguous() ? Tensor() : p.contiguous());
      grads[gi].push_back(g.contiguous());  // only read: a contiguous copy serves
      ParamView v;
      v.param = view_of(staged[gi].back().defined() ? staged[gi].back() : p);
      v.grad = view_of(grads[gi].back());
      v.index = i;
      const auto found = state_.find(state_key(p));
      if (found != state_.end()) {
        auto& s = static_cast<RMSpropParamState&>(*found->second);
        for (std::size_t k = 0; k < kSlots; ++k) {
          v.state[k] = state_view_of(slot_of(s, Slot(k)), v.param.size);
        }
        v.step = s.step();
      }
      views[gi].push_back(v);
    }
    groups.push_back(GroupView::of(o, o.lr, gi, views[gi]));
    groups.back().holds_state8 = true;
  }
  const DeviceHooks hooks = cuda::built() ? cuda_hooks() : DeviceHooks{};
  const StepPlan plan(groups, kernel_, hooks);
  last_step_applied_ = !plan.skipped();
  if (plan.skipped()) return loss;

  std::vector<std::vector<RMSpropParamState*>> states(n);
  for (std::size_t gi = 0; gi < n; ++gi) {
    for (const Tensor& p : params[gi]) {
      auto& slot = state_[state_key(p)];
      if (!slot) slot = std::make_unique<RMSpropParamState>();
      states[gi].push_back(static_cast<RMSpropParamState*>(slot.get()));
    }
    for (const StateRequest& r : plan.requests(gi)) {
      Tensor& t = slot_of(*states[gi][r.param], r.slot);
      ParamView& view = views[gi][r.param];
      t = make_state(r, params[gi][r.param], t, view);
      view.state[std::size_t(r.slot)] = state_view_of(t, view.param.size);
    }
  }
  plan.run(groups, kernel_, hooks);
  for (std::size_t gi = 0; gi < n; ++gi) {
    for (std::size_t k = 0; k < staged[gi].size(); ++k) {
      if (staged[gi][k].defined()) params[gi][k].copy_(staged[gi][k]);
    }
  }
  for (std::size_t gi = 0; gi < n; ++gi) {
    for (std::size_t k = 0; k < views[gi].size(); ++k) states[gi][k]->step(views[gi][k].step);
  }
  return loss;
}

void RMSprop::save(::torch::serialize::OutputArchive& archive) const {
  ::torch::optim::serialize<RMSpropParamState, RMSpropOptions>(archive, *this);
}

// The text of a saved parameter key as the address it was: libtorch 1.x writes the TensorImpl
// pointer as "0x55d0c1a2b3c0" (operator<<), 2.x as its decimal value. Either is read, so an
// archive saved by either major version loads in the other (libtorch 2.x's own loader reads a
// 1.x key as 0 for every parameter: one gets the state of another, the rest a null entry).
std::uintptr_t saved_key(const std::string& text) {
  std::size_t end = 0;
  unsigned long long value = 0;
  try {
    value = std::stoull(text, &end, 0);
  } catch (const std::exception&) {
    end = 0;
  }
  if (end == 0 || end != text.size()) {
    throw CheckpointError("optimizer archive: parameter key '" + text +
                          "' is neither libtorch 1.x's hexadecimal nor 2.x's decimal address");
  }
  return std::uintptr_t(value);
}

// Read as libtorch's own serialize() reads (the same archive layout, "pytorch_version" 1.5.0),
// but every key format, the groups' options too (so that a run resumes with the options it
// was saved with), and all of it checked before the optimizer changes: the group and parameter
// counts, each state's sizes against its parameter, the step counts and the options.
void RMSprop::load(::torch::serialize::InputArchive& archive) {
  std::map<std::uintptr_t, std::unique_ptr<RMSpropParamState>> saved_state;
  std::vector<
      std::pair<std::vector<std::string>, std::unique_ptr<::torch::optim::OptimizerOptions>>>
      saved_groups;
  try {
    c10::IValue version;
    archive.read("pytorch_version", version);
    if (!version.isString() || version.toStringRef() != "1.5.0") {
      throw CheckpointError(
          "optimizer archive: 'pytorch_version' is " +
          (version.isString() ? "\"" + version.toStringRef() + "\"" : version.tagKind()) +
          ", not the \"1.5.0\" layout every libtorch since 1.5 writes");
    }
    ::torch::serialize::InputArchive state_archive;
    archive.read("state", state_archive);
    for (const std::string& key : state_archive.keys()) {
      ::torch::serialize::InputArchive one;
      state_archive.read(key, one);
      auto state = std::make_unique<RMSpropParamState>();
      state->serialize(one);
      saved_state[saved_key(key)] = std::move(state);
    }
    ::torch::serialize::InputArchive groups_archive;
    archive.read("param_groups", groups_archive);
    ::torch::optim::detail::serialize<RMSpropOptions>(groups_archive, saved_groups);
  } catch (const c10::Error& e) {
    throw CheckpointError(std::string("optimizer archive: ") + e.what_without_backtrace());
  } catch (const InvalidOption& e) {  // a group's saved options (RMSpropOptions::serialize)
    throw CheckpointError(std::string("optimizer archive: ") + e.what());
  }

  const auto& groups = param_groups();
  if (saved_groups.size() != groups.size()) {
    throw CheckpointError("optimizer archive has " + std::to_string(saved_groups.size()) +
                          " parameter groups; this optimizer has " + std::to_string(groups.size()));
  }
  std::vector<std::pair<void*, RMSpropParamState*>> restored;
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    const auto& keys = saved_groups[gi].first;
    const auto& params = groups[gi].params();
    if (keys.size() != params.size()) {
      throw CheckpointError("optimizer archive: group " + std::to_string(gi) + " has " +
                            std::to_string(keys.size()) + " parameters; this optimizer's has " +
                            std::to_string(params.size()));
    }
    try {
      static_cast<const RMSpropOptions&>(*saved_groups[gi].second).core().validate();
    } catch (const InvalidOption& e) {
      throw CheckpointError("optimizer archive: group " + std::to_string(gi) + ": " + e.what());
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      const auto found = saved_state.find(saved_key(keys[i]));
      if (found == saved_state.end()) continue;  // saved before its first step
      RMSpropParamState& s = *found->second;
      const std::string where =
          "optimizer archive: group " + std::to_string(gi) + ", parameter " + std::to_string(i);
      if (const std::string problem = step_count_problem(s.step()); !problem.empty()) {
        throw CheckpointError(where + " has " + problem);
      }
      for (std::size_t k = 0; k < kSlots; ++k) {
        const Tensor& t = slot_of(s, Slot(k));
        if (!t.defined()) continue;
        // 8-bit state (uint8) holds the parameter's values in storage_bytes(i8_block, n) bytes
        const auto n = std::size_t(params[i].numel());
        const bool state8 = t.scalar_type() == c10::kByte && Slot(k) != Slot::master;
        const std::size_t expected = state8 ? storage_bytes(DType::i8_block, n) : n;
        if (std::size_t(t.numel()) != expected) {
          throw CheckpointError(
              where + ": " + std::string(rmsprop::to_string(Slot(k))) + " has " +
              std::to_string(t.numel()) +
              (state8 ? " bytes of 8-bit state (" + std::to_string(expected) + " expected)"
                      : " elements") +
              "; the parameter has " + std::to_string(n));
        }
      }
      restored.emplace_back(params[i].unsafeGetTensorImpl(), &s);
    }
  }

  // Nothing can fail from here on.
  state_.clear();
  for (const auto& [impl, s] : restored) {
    state_[key_of<StateKey>(impl)] =
        static_cast<const ::torch::optim::OptimizerParamState&>(*s).clone();
  }
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    param_groups()[gi].set_options(std::move(saved_groups[gi].second));
  }
}

namespace {

// A tensor the core's state transfer reads or writes: a contiguous CPU tensor, as view_of sees
// it; anything else is refused naming where it is.
const std::byte* host_bytes(const Tensor& t, const std::string& where) {
  if (!t.is_cpu() || !t.is_contiguous()) {
    throw InvalidArgument(where + ": only contiguous CPU tensors (the core Optimizer's memory)");
  }
  return static_cast<const std::byte*>(t.data_ptr());
}

BufferView host_view(const Tensor& t, const std::string& where) {
  const BufferView v = view_of(t);
  if (!v.supported_dtype) {
    throw InvalidArgument(where + ": " + std::string(v.dtype_name) + " is not supported");
  }
  host_bytes(t, where);
  return v;
}

// A state buffer's dtype as the core stores it: the master copy is float32 always.
DType stored_dtype(Slot slot, DType state_dtype) {
  return slot == Slot::master ? DType::f32 : state_dtype;
}

}  // namespace

Optimizer core_optimizer_of(const RMSprop& opt) {
  auto& self = const_cast<RMSprop&>(opt);  // state() and param_groups() have no const overloads
  std::vector<ParamGroup> groups;
  std::vector<std::pair<std::pair<std::size_t, std::size_t>, Optimizer::StatePiece>> pieces;
  for (std::size_t gi = 0; gi < self.param_groups().size(); ++gi) {
    const auto& group = self.param_groups()[gi];
    ParamGroup core{{}, static_cast<const RMSpropOptions&>(group.options()).core()};
    for (std::size_t i = 0; i < group.params().size(); ++i) {
      const Tensor& p = group.params()[i];
      const std::string where = where_of(gi, i);
      const BufferView v = host_view(p, where);
      core.params.push_back({v.data, nullptr, v.size, v.dtype, v.complex});
      const auto found = self.state().find(state_key(p));
      if (found == self.state().end()) continue;
      auto& s = static_cast<RMSpropParamState&>(*found->second);
      if (!s.square_avg().defined()) continue;
      Optimizer::StatePiece piece;
      piece.step = s.step();
      piece.size = v.size;
      piece.state_dtype = state_view_of(s.square_avg(), v.size).dtype;
      for (std::size_t k = 0; k < kSlots; ++k) {
        const Tensor& t = slot_of(s, Slot(k));
        if (!t.defined()) continue;
        const std::byte* bytes = host_bytes(t, where + ", " + std::string(to_string(Slot(k))));
        piece.buffers[k].assign(bytes, bytes + t.nbytes());
      }
      pieces.push_back({{gi, i}, std::move(piece)});
    }
    groups.push_back(std::move(core));
  }
  Optimizer core(std::move(groups));
  std::int64_t steps = 0;
  for (const auto& [at, piece] : pieces) {
    core.set_state_piece(at.first, at.second, 0, piece);  // checks each buffer's size
    steps = std::max(steps, piece.step);
  }
  core.set_steps_taken(steps);
  return core;
}

void set_state(RMSprop& opt, const Optimizer& core) {
  auto& groups = opt.param_groups();
  if (core.num_groups() != groups.size()) {
    throw InvalidArgument("set_state: the core optimizer has " + std::to_string(core.num_groups()) +
                          " parameter groups; this optimizer has " + std::to_string(groups.size()));
  }
  std::vector<std::pair<StateKey, std::unique_ptr<RMSpropParamState>>> states;
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    const auto& params = groups[gi].params();
    if (core.num_params(gi) != params.size()) {
      throw InvalidArgument("set_state: group " + std::to_string(gi) + " has " +
                            std::to_string(core.num_params(gi)) +
                            " parameters in the core optimizer; this optimizer's has " +
                            std::to_string(params.size()));
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      const Tensor& p = params[i];
      const std::string where = "set_state: " + where_of(gi, i);
      const BufferView v = host_view(p, where);
      const Param& theirs = core.param(gi, i);
      if (theirs.size != v.size || theirs.dtype != v.dtype || theirs.complex != v.complex) {
        throw InvalidArgument(where + ": the core optimizer's parameter has " +
                              std::to_string(theirs.size) + " values of " +
                              std::string(to_string(theirs.dtype)) + "; this one " +
                              std::to_string(v.size) + " of " + std::string(to_string(v.dtype)));
      }
      if (core.step_count(gi, i) == 0) continue;  // no state before its first step
      const Optimizer::StatePiece piece = core.state_piece(gi, i, 0, v.size);
      auto state = std::make_unique<RMSpropParamState>();
      state->step(piece.step);
      for (std::size_t k = 0; k < kSlots; ++k) {
        const auto& bytes = piece.buffers[k];
        if (bytes.empty()) continue;
        const DType dtype = stored_dtype(Slot(k), piece.state_dtype);
        auto type = scalar_type_of(dtype);
        if (p.is_complex()) type = dtype == DType::f64 ? c10::kComplexDouble : c10::kComplexFloat;
        Tensor t = dtype == DType::i8_block
                       ? ::torch::empty({std::int64_t(bytes.size())}, ::torch::dtype(type))
                       : ::torch::empty(p.sizes(), ::torch::dtype(type));
        if (std::size_t(t.nbytes()) != bytes.size()) {
          throw InvalidArgument(where + ": the core optimizer's " +
                                std::string(to_string(Slot(k))) + " has " +
                                std::to_string(bytes.size()) + " bytes; this parameter's takes " +
                                std::to_string(t.nbytes()));
        }
        std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
        slot_of(*state, Slot(k)) = t;
      }
      states.emplace_back(state_key(p), std::move(state));
    }
  }
  // Nothing can fail from here on.
  opt.state().clear();
  for (auto& [key, state] : states) opt.state()[key] = std::move(state);
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    groups[gi].set_options(std::make_unique<RMSpropOptions>(core.options(gi)));
  }
}

}  // namespace rmsprop::torch
