#include "rmsprop/optimizer.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_set>

#include "kernels/storage.hpp"
#include "optimizer_impl.hpp"
#include "rmsprop/error.hpp"
#include "text.hpp"

namespace rmsprop {
namespace {

std::string where(std::size_t group, std::size_t index) {
  return "group " + std::to_string(group) + ", parameter " + std::to_string(index);
}

// Fills a new buffer of `size` values of `dtype` from values(i).
template <class Values>
AlignedBuffer make_buffer(DType dtype, std::size_t size, Values values) {
  AlignedBuffer buffer(size * size_of(dtype));
  for (std::size_t i = 0; i < size; ++i) {
    kernels::store_from_double(dtype, buffer.data(), i, values(i));
  }
  return buffer;
}

// Brings a parameter's state to what this step's variant and precision need: creates missing
// buffers (square_avg at initial_accumulator_value, the others at 0, the master copy from the
// parameter), converts buffers kept in another state dtype, drops an unused master copy.
void ensure_state(ParamState& state, const Param& p, const Variant& v, const Options& o,
                  const Precision& precision) {
  if (p.size == 0) return;
  for (AlignedBuffer* b : {&state.square_avg, &state.grad_avg, &state.momentum_buffer}) {
    if (b->empty() || state.state_dtype == precision.state) continue;
    const AlignedBuffer old = std::move(*b);
    *b = make_buffer(precision.state, p.size, [&](std::size_t i) {
      return kernels::load_as_double(state.state_dtype, old.data(), i);
    });
  }
  state.state_dtype = precision.state;
  auto make = [&](AlignedBuffer& buffer, bool needed, double initial) {
    if (!needed || !buffer.empty()) return;
    buffer = make_buffer(precision.state, p.size, [&](std::size_t) { return initial; });
  };
  make(state.square_avg, v.uses_square_avg(), o.initial_accumulator_value);
  make(state.grad_avg, v.uses_grad_avg(), 0.0);
  make(state.momentum_buffer, v.uses_momentum_buffer(), 0.0);
  if (!precision.master_weights) {
    state.master = AlignedBuffer();
  } else if (state.master.empty()) {
    state.master = make_buffer(DType::f32, p.size, [&](std::size_t i) {
      return kernels::load_as_double(p.dtype, p.data, i);
    });
  }
}

// Checks that every parameter's dtype goes with the group's storage options.
void check_group(const std::vector<Param>& params, const Options& o, std::size_t group) {
  for (std::size_t i = 0; i < params.size(); ++i) {
    const DType dtype = params[i].dtype;
    if (dtype == DType::f64 && o.state_dtype == StateDType::bfloat16) {
      throw InvalidArgument(where(group, i) +
                            ": float64 parameters keep float64 state; state_dtype=bfloat16 is "
                            "for float32 and 16-bit parameters");
    }
    if (o.stochastic_rounding && dtype == DType::f16) {
      throw InvalidArgument(where(group, i) +
                            ": stochastic_rounding is for bfloat16 parameters, not float16");
    }
  }
}

}  // namespace

namespace {

template <class T>
Param param_of(std::span<T> data, std::span<T> grad, DType dtype) {
  if (data.size() != grad.size()) {
    throw InvalidArgument("Param::of: data has " + std::to_string(data.size()) +
                          " values but grad has " + std::to_string(grad.size()));
  }
  return {data.data(), grad.data(), data.size(), dtype};
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
  StepResult result;
  // Everything that can fail is checked before anything changes.
  bool skip = false;
  for (std::size_t gi = 0; gi < impl_->groups.size(); ++gi) {
    const Group& g = impl_->groups[gi];
    if (g.options.non_finite == NonFinitePolicy::propagate) continue;
    std::vector<ConstBuffer> grads;
    std::vector<std::size_t> index;  // parameter of each scanned gradient
    for (std::size_t i = 0; i < g.params.size(); ++i) {
      const Param& p = g.params[i];
      if (p.grad == nullptr) continue;
      grads.push_back({p.grad, p.dtype, p.size});
      index.push_back(i);
    }
    const auto hit = find_non_finite(grads, impl_->kernel.threads);
    if (!hit) continue;
    if (g.options.non_finite == NonFinitePolicy::error) {
      const Param& p = g.params[index[hit->first]];
      throw NonFiniteError("non-finite gradient in " + where(gi, index[hit->first]) +
                           " at element " + std::to_string(hit->second) + ": " +
                           format_double(kernels::load_as_double(p.dtype, p.grad, hit->second)) +
                           " (policy non_finite=error: nothing was changed)");
    }
    skip = true;  // the rare path: count the parameters concerned
    for (const ConstBuffer& b : grads)
      result.non_finite += find_non_finite(b.dtype, b.data, b.size, nullptr);
  }
  if (skip) {
    result.applied = false;
    return result;
  }
  std::vector<double> lrs;
  for (const Group& g : impl_->groups) {
    lrs.push_back(impl_->schedule.lr(g.options.lr, impl_->steps_taken));
  }

  // One fused call per (group, precision): a group's float32 and bfloat16 parameters, say.
  std::vector<std::pair<Precision, std::vector<TensorTask>>> calls;
  for (std::size_t gi = 0; gi < impl_->groups.size(); ++gi) {
    Group& g = impl_->groups[gi];
    const Variant v = variant_of(g.options);
    calls.clear();
    for (std::size_t i = 0; i < g.params.size(); ++i) {
      const Param& p = g.params[i];
      if (p.grad == nullptr) continue;
      const Precision precision = precision_for(p.dtype, g.options);
      ParamState& s = g.states[i];
      ensure_state(s, p, v, g.options, precision);
      ++s.step;
      TensorTask t;
      t.param = p.data;
      t.grad = p.grad;
      t.square_avg = s.square_avg.data();
      t.grad_avg = s.grad_avg.data();
      t.momentum_buffer = s.momentum_buffer.data();
      t.master = reinterpret_cast<float*>(s.master.data());
      t.size = p.size;
      t.coefficients = coefficients(g.options, s.step, lrs[gi]);
      t.rounding_seed = rounding_seed(gi, i, s.step);
      auto call = std::find_if(calls.begin(), calls.end(),
                               [&](const auto& c) { return c.first == precision; });
      if (call == calls.end()) call = calls.insert(calls.end(), {precision, {}});
      call->second.push_back(t);
      ++result.updated;
    }
    for (const auto& [precision, tasks] : calls) fused_step(v, precision, tasks, impl_->kernel);
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
