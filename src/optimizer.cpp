#include "rmsprop/optimizer.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_set>

#include "kernels/storage.hpp"
#include "optimizer_impl.hpp"
#include "rmsprop/error.hpp"
#include "rmsprop/step_plan.hpp"
#include "text.hpp"

namespace rmsprop {
namespace {

// Checks that every parameter's dtype goes with the group's storage options.
void check_group(const std::vector<Param>& params, const Options& o, std::size_t group) {
  for (std::size_t i = 0; i < params.size(); ++i) {
    const std::string problem = precision_problem(params[i].dtype, o, params[i].size);
    if (!problem.empty()) throw InvalidArgument(where(group, i) + ": " + problem);
  }
}

AlignedBuffer& slot_of(ParamState& s, Slot slot) {
  switch (slot) {
    case Slot::square_avg:
      return s.square_avg;
    case Slot::grad_avg:
      return s.grad_avg;
    case Slot::momentum_buffer:
      return s.momentum_buffer;
    case Slot::master:
      break;
  }
  return s.master;
}

// A parameter and its state as the planner sees them (see NOTE: [step planner]).
ParamView view_of(const Param& p, ParamState& s, std::size_t index) {
  ParamView v;
  v.param = BufferView::of(p.data, p.dtype, p.size);
  v.param.complex = p.complex;
  if (p.grad != nullptr) {
    v.grad = BufferView::of(p.grad, p.dtype, p.size);
    v.grad.complex = p.complex;
  }
  for (std::size_t k = 0; k < kSlots; ++k) {
    AlignedBuffer& b = slot_of(s, Slot(k));
    const DType dtype = Slot(k) == Slot::master ? DType::f32 : s.state_dtype;
    if (!b.empty()) {
      v.state[k] = BufferView::of(b.data(), dtype, state_values_in(dtype, b.bytes(), p.size));
      v.state[k].complex = p.complex && Slot(k) != Slot::master;
    }
  }
  v.step = s.step;
  v.index = index;
  return v;
}

}  // namespace

namespace {

template <class T>
Param param_of(std::span<T> data, std::span<T> grad, DType dtype) {
  if (data.size() != grad.size()) {
    throw InvalidArgument("Param::of: data has " + std::to_string(data.size()) +
                          " values but grad has " + std::to_string(grad.size()));
  }
  return {data.data(), grad.data(), data.size(), dtype, false};
}

}  // namespace

Param Param::of(std::span<float> data, std::span<float> grad) {
  return param_of(data, grad, DType::f32);
}
Param Param::of(std::span<double> data, std::span<double> grad) {
  return param_of(data, grad, DType::f64);
}
Param Param::of(std::span<bfloat16> data, std::span<bfloat16> grad) {
  return param_of(data, grad, DType::bf16);
}
Param Param::of(std::span<float16> data, std::span<float16> grad) {
  return param_of(data, grad, DType::f16);
}
// std::complex<T> is laid out as T[2] (real, imaginary): its real view, twice as long
Param Param::of(std::span<std::complex<float>> data, std::span<std::complex<float>> grad) {
  Param p = param_of(data, grad, DType::f32);
  p.size *= 2, p.complex = true;
  return p;
}
Param Param::of(std::span<std::complex<double>> data, std::span<std::complex<double>> grad) {
  Param p = param_of(data, grad, DType::f64);
  p.size *= 2, p.complex = true;
  return p;
}

Optimizer::Optimizer(std::vector<Param> params, const Options& options)
    : Optimizer(std::vector<ParamGroup>{ParamGroup{std::move(params), options}}) {}

Optimizer::Optimizer(std::vector<ParamGroup> groups) : impl_(std::make_unique<Impl>()) {
  for (ParamGroup& g : groups) add_param_group(std::move(g));
}

Optimizer::~Optimizer() = default;
Optimizer::Optimizer(Optimizer&&) noexcept = default;
Optimizer& Optimizer::operator=(Optimizer&&) noexcept = default;

void Optimizer::add_param_group(ParamGroup group) {
  group.options.validate();
  std::unordered_set<const void*> seen;
  for (const Group& g : impl_->groups) {
    for (const Param& p : g.params) seen.insert(p.data);
  }
  const std::size_t group_index = impl_->groups.size();
  for (std::size_t i = 0; i < group.params.size(); ++i) {
    const Param& p = group.params[i];
    if (p.data == nullptr && p.size > 0) {
      throw InvalidArgument(where(group_index, i) + ": data is null");
    }
    if (std::uint8_t(p.dtype) > std::uint8_t(DType::f16)) {
      throw InvalidArgument(where(group_index, i) + ": unsupported dtype code " +
                            std::to_string(int(p.dtype)));
    }
    if (p.size > 0 && !seen.insert(p.data).second) {
      throw InvalidArgument(where(group_index, i) +
                            ": this buffer is already a parameter of the optimizer");
    }
  }
  check_group(group.params, group.options, group_index);
  Group g{group.options, std::move(group.params), {}};
  g.states.resize(g.params.size());
  impl_->groups.push_back(std::move(g));
}

StepResult Optimizer::step() {
  if (impl_->steps_taken >= kMaxStepCount) {
    throw InvalidArgument("the optimizer has taken " + std::to_string(impl_->steps_taken) +
                          " steps, the most this library counts (2^53)");
  }
  std::vector<std::vector<ParamView>> views(impl_->groups.size());
  std::vector<GroupView> groups;
  for (std::size_t gi = 0; gi < impl_->groups.size(); ++gi) {
    Group& g = impl_->groups[gi];
    for (std::size_t i = 0; i < g.params.size(); ++i)
      views[gi].push_back(view_of(g.params[i], g.states[i], i));
    groups.push_back(GroupView::of(g.options, impl_->schedule.lr(g.options.lr, impl_->steps_taken),
                                   gi, views[gi]));
    groups.back().holds_state8 = true;
  }
  const StepPlan plan(groups, impl_->kernel);  // everything checked: nothing changed yet
  StepResult result;
  result.non_finite = plan.non_finite();
  if (plan.skipped()) {
    result.applied = false;
    return result;
  }
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    for (const StateRequest& r : plan.requests(gi)) {
      AlignedBuffer buffer(storage_bytes(r.dtype, r.size));
      ParamView& v = views[gi][r.param];
      initialize_state(r, v, buffer.data());
      v.state[std::size_t(r.slot)] = BufferView::of(buffer.data(), r.dtype, r.size);
      v.state[std::size_t(r.slot)].complex = v.param.complex && r.slot != Slot::master;
      slot_of(impl_->groups[gi].states[r.param], r.slot) = std::move(buffer);
    }
  }
  plan.run(groups, impl_->kernel);
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    Group& g = impl_->groups[gi];
    for (std::size_t i = 0; i < g.params.size(); ++i) {
      if (g.params[i].grad == nullptr) continue;
      ParamState& s = g.states[i];
      const Precision& precision = plan.precision(gi, i);
      s.step = views[gi][i].step;
      if (g.params[i].size > 0) s.state_dtype = precision.state;
      if (!precision.master_weights) s.master = AlignedBuffer();
      ++result.updated;
    }
  }
  ++impl_->steps_taken;
  return result;
}

void Optimizer::zero_grad() {
  for (const Group& g : impl_->groups) {
    for (const Param& p : g.params) {
      if (p.grad != nullptr) std::memset(p.grad, 0, p.size * size_of(p.dtype));
    }
  }
}

std::size_t Optimizer::num_groups() const {
  return impl_->groups.size();
}

std::size_t Optimizer::num_params(std::size_t group) const {
  if (group >= impl_->groups.size()) {
    throw InvalidArgument("group " + std::to_string(group) + " does not exist (" +
                          std::to_string(impl_->groups.size()) + " groups)");
  }
  return impl_->groups[group].params.size();
}

const Options& Optimizer::options(std::size_t group) const {
  num_params(group);
  return impl_->groups[group].options;
}

void Optimizer::set_options(std::size_t group, const Options& options) {
  num_params(group);
  options.validate();
  check_group(impl_->groups[group].params, options, group);
  impl_->groups[group].options = options;
}

void Optimizer::set_param(std::size_t group, std::size_t index, const Param& param) {
  if (index >= num_params(group)) {
    throw InvalidArgument(where(group, index) + " does not exist");
  }
  Param& p = impl_->groups[group].params[index];
  if (param.size != p.size || param.dtype != p.dtype || (param.data == nullptr && p.size > 0)) {
    throw InvalidArgument(where(group, index) + ": new buffers must keep size " +
                          std::to_string(p.size) + " and dtype " + std::string(to_string(p.dtype)));
  }
  p = param;
}

void Optimizer::set_kernel_config(const KernelConfig& config) {
  std::vector<TensorTask> none;
  fused_step(Variant{}, DType::f32, none, config);  // validates threads and target
  impl_->kernel = config;
}
const KernelConfig& Optimizer::kernel_config() const {
  return impl_->kernel;
}

void Optimizer::set_schedule(Schedule schedule) {
  impl_->schedule = std::move(schedule);
}
const Schedule& Optimizer::schedule() const {
  return impl_->schedule;
}

double Optimizer::current_lr(std::size_t group) const {
  return impl_->schedule.lr(options(group).lr, impl_->steps_taken);
}

std::int64_t Optimizer::steps_taken() const {
  return impl_->steps_taken;
}

const Param& Optimizer::param(std::size_t group, std::size_t index) const {
  if (index >= num_params(group)) throw InvalidArgument(where(group, index) + " does not exist");
  return impl_->groups[group].params[index];
}

std::int64_t Optimizer::step_count(std::size_t group, std::size_t index) const {
  if (index >= num_params(group)) throw InvalidArgument(where(group, index) + " does not exist");
  return impl_->groups[group].states[index].step;
}

namespace {

template <class T>
constexpr DType dtype_of = std::is_same_v<T, float>      ? DType::f32
                           : std::is_same_v<T, double>   ? DType::f64
                           : std::is_same_v<T, bfloat16> ? DType::bf16
                                                         : DType::f16;

template <class T>
std::span<const T> view(const Optimizer& opt, const Optimizer::Impl& impl, std::size_t group,
                        std::size_t index, AlignedBuffer ParamState::*member) {
  opt.step_count(group, index);  // checks that the parameter exists
  const Group& g = impl.groups[group];
  const ParamState& s = g.states[index];
  const AlignedBuffer& b = s.*member;
  const DType stored = member == &ParamState::master ? DType::f32 : s.state_dtype;
  if (b.empty()) return {};
  if (stored != dtype_of<T>) {
    throw InvalidArgument(where(group, index) + " holds " + std::string(to_string(stored)) +
                          " state, not " + std::string(to_string(dtype_of<T>)));
  }
  return {reinterpret_cast<const T*>(b.data()), g.params[index].size};
}

}  // namespace

DType Optimizer::state_dtype(std::size_t group, std::size_t index) const {
  step_count(group, index);  // checks that the parameter exists
  return impl_->groups[group].states[index].state_dtype;
}

std::vector<double> Optimizer::state_values(std::size_t group, std::size_t index,
                                            std::string_view buffer) const {
  step_count(group, index);
  const ParamState& s = impl_->groups[group].states[index];
  const AlignedBuffer* b = buffer == "square_avg"        ? &s.square_avg
                           : buffer == "grad_avg"        ? &s.grad_avg
                           : buffer == "momentum_buffer" ? &s.momentum_buffer
                                                         : nullptr;
  if (b == nullptr) {
    throw InvalidArgument("state_values: no state buffer '" + std::string(buffer) +
                          "' (square_avg, grad_avg or momentum_buffer)");
  }
  if (b->empty()) return {};
  return kernels::load_state(s.state_dtype, b == &s.square_avg, b->data(),
                             impl_->groups[group].params[index].size);
}

template <class T>
std::span<const T> Optimizer::square_avg(std::size_t group, std::size_t index) const {
  return view<T>(*this, *impl_, group, index, &ParamState::square_avg);
}
template <class T>
std::span<const T> Optimizer::grad_avg(std::size_t group, std::size_t index) const {
  return view<T>(*this, *impl_, group, index, &ParamState::grad_avg);
}
template <class T>
std::span<const T> Optimizer::momentum_buffer(std::size_t group, std::size_t index) const {
  return view<T>(*this, *impl_, group, index, &ParamState::momentum_buffer);
}
std::span<const float> Optimizer::master_weights(std::size_t group, std::size_t index) const {
  return view<float>(*this, *impl_, group, index, &ParamState::master);
}

template std::span<const float> Optimizer::square_avg(std::size_t, std::size_t) const;
template std::span<const double> Optimizer::square_avg(std::size_t, std::size_t) const;
template std::span<const float> Optimizer::grad_avg(std::size_t, std::size_t) const;
template std::span<const double> Optimizer::grad_avg(std::size_t, std::size_t) const;
template std::span<const float> Optimizer::momentum_buffer(std::size_t, std::size_t) const;
template std::span<const double> Optimizer::momentum_buffer(std::size_t, std::size_t) const;
template std::span<const bfloat16> Optimizer::square_avg(std::size_t, std::size_t) const;
template std::span<const bfloat16> Optimizer::grad_avg(std::size_t, std::size_t) const;
template std::span<const bfloat16> Optimizer::momentum_buffer(std::size_t, std::size_t) const;

}  // namespace rmsprop
