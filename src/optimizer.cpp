#include "rmsprop/optimizer.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_set>

#include "optimizer_impl.hpp"
#include "rmsprop/error.hpp"
#include "text.hpp"

namespace rmsprop {
namespace {

std::string where(std::size_t group, std::size_t index) {
  return "group " + std::to_string(group) + ", parameter " + std::to_string(index);
}

template <class T>
void fill(AlignedBuffer& buffer, std::size_t size, double value) {
  T* data = reinterpret_cast<T*>(buffer.data());
  std::fill(data, data + size, T(value));
}

// Creates the state buffers the variant needs and the parameter lacks.
void ensure_state(ParamState& state, const Param& p, const Variant& v, const Options& o) {
  auto make = [&](AlignedBuffer& buffer, bool needed, double initial) {
    if (!needed || !buffer.empty() || p.size == 0) return;
    buffer = AlignedBuffer(p.size * size_of(p.dtype));
    if (p.dtype == DType::f32) {
      fill<float>(buffer, p.size, initial);
    } else {
      fill<double>(buffer, p.size, initial);
    }
  };
  make(state.square_avg, v.uses_square_avg(), o.initial_accumulator_value);
  make(state.grad_avg, v.uses_grad_avg(), 0.0);
  make(state.momentum_buffer, v.uses_momentum_buffer(), 0.0);
}

double value_at(DType dtype, const void* data, std::size_t i) {
  return dtype == DType::f32 ? double(static_cast<const float*>(data)[i])
                             : static_cast<const double*>(data)[i];
}

}  // namespace

Param Param::of(std::span<float> data, std::span<float> grad) {
  if (data.size() != grad.size()) {
    throw InvalidArgument("Param::of: data has " + std::to_string(data.size()) +
                          " values but grad has " + std::to_string(grad.size()));
  }
  return {data.data(), grad.data(), data.size(), DType::f32};
}

Param Param::of(std::span<double> data, std::span<double> grad) {
  if (data.size() != grad.size()) {
    throw InvalidArgument("Param::of: data has " + std::to_string(data.size()) +
                          " values but grad has " + std::to_string(grad.size()));
  }
  return {data.data(), grad.data(), data.size(), DType::f64};
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
    if (p.dtype != DType::f32 && p.dtype != DType::f64) {
      throw InvalidArgument(where(group_index, i) + ": unsupported dtype " +
                            std::to_string(int(p.dtype)));
    }
    if (p.size > 0 && !seen.insert(p.data).second) {
      throw InvalidArgument(where(group_index, i) +
                            ": this buffer is already a parameter of the optimizer");
    }
  }
  Group g{group.options, std::move(group.params), {}};
  g.states.resize(g.params.size());
  impl_->groups.push_back(std::move(g));
}

StepResult Optimizer::step() {
  StepResult result;
  // Everything that can fail is checked before anything changes.
  bool skip = false;
  for (std::size_t gi = 0; gi < impl_->groups.size(); ++gi) {
    const Group& g = impl_->groups[gi];
    if (g.options.non_finite == NonFinitePolicy::propagate) continue;
    for (std::size_t i = 0; i < g.params.size(); ++i) {
      const Param& p = g.params[i];
      std::size_t at = 0;
      if (p.grad == nullptr || !find_non_finite(p.dtype, p.grad, p.size, &at)) continue;
      if (g.options.non_finite == NonFinitePolicy::error) {
        throw NonFiniteError("non-finite gradient in " + where(gi, i) + " at element " +
                             std::to_string(at) + ": " +
                             format_double(value_at(p.dtype, p.grad, at)) +
                             " (policy non_finite=error: nothing was changed)");
      }
      ++result.non_finite;
      skip = true;
    }
  }
  if (skip) {
    result.applied = false;
    return result;
  }
  std::vector<double> lrs;
  for (const Group& g : impl_->groups) {
    lrs.push_back(impl_->schedule.lr(g.options.lr, impl_->steps_taken));
  }

  std::vector<TensorTask> tasks[2];  // by dtype
  for (std::size_t gi = 0; gi < impl_->groups.size(); ++gi) {
    Group& g = impl_->groups[gi];
    const Variant v = variant_of(g.options);
    for (auto& list : tasks) list.clear();
    for (std::size_t i = 0; i < g.params.size(); ++i) {
      const Param& p = g.params[i];
      if (p.grad == nullptr) continue;
      ParamState& s = g.states[i];
      ensure_state(s, p, v, g.options);
      ++s.step;
      TensorTask t;
      t.param = p.data;
      t.grad = p.grad;
      t.square_avg = s.square_avg.data();
      t.grad_avg = s.grad_avg.data();
      t.momentum_buffer = s.momentum_buffer.data();
      t.size = p.size;
      t.coefficients = coefficients(g.options, s.step, lrs[gi]);
      tasks[int(p.dtype)].push_back(t);
      ++result.updated;
    }
    fused_step(v, DType::f32, tasks[0], impl_->kernel);
    fused_step(v, DType::f64, tasks[1], impl_->kernel);
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

std::int64_t Optimizer::step_count(std::size_t group, std::size_t index) const {
  if (index >= num_params(group)) throw InvalidArgument(where(group, index) + " does not exist");
  return impl_->groups[group].states[index].step;
}

namespace {

template <class T>
std::span<const T> view(const Optimizer::Impl& impl, std::size_t group, std::size_t index,
                        AlignedBuffer ParamState::*member) {
  const Group& g = impl.groups.at(group);
  const Param& p = g.params.at(index);
  if ((p.dtype == DType::f32) != std::is_same_v<T, float>) {
    throw InvalidArgument(where(group, index) + " holds " + std::string(to_string(p.dtype)) +
                          " state");
  }
  const AlignedBuffer& b = g.states[index].*member;
  if (b.empty()) return {};
  return {reinterpret_cast<const T*>(b.data()), p.size};
}

}  // namespace

template <class T>
std::span<const T> Optimizer::square_avg(std::size_t group, std::size_t index) const {
  return view<T>(*impl_, group, index, &ParamState::square_avg);
}
template <class T>
std::span<const T> Optimizer::grad_avg(std::size_t group, std::size_t index) const {
  return view<T>(*impl_, group, index, &ParamState::grad_avg);
}
template <class T>
std::span<const T> Optimizer::momentum_buffer(std::size_t group, std::size_t index) const {
  return view<T>(*impl_, group, index, &ParamState::momentum_buffer);
}

template std::span<const float> Optimizer::square_avg(std::size_t, std::size_t) const;
template std::span<const double> Optimizer::square_avg(std::size_t, std::size_t) const;
template std::span<const float> Optimizer::grad_avg(std::size_t, std::size_t) const;
template std::span<const double> Optimizer::grad_avg(std::size_t, std::size_t) const;
template std::span<const float> Optimizer::momentum_buffer(std::size_t, std::size_t) const;
template std::span<const double> Optimizer::momentum_buffer(std::size_t, std::size_t) const;

}  // namespace rmsprop
