// The step planner: one optimizer step over parameter groups, as every front end runs it.
//
// NOTE: [step planner] The C++ optimizer, the libtorch optimizer and the Python optimizer
// each hold parameters and state in their own containers (aligned buffers, torch tensors);
// they describe them to the planner as views (pointer, dtype, size, device) and the planner
// does the rest, once:
//   1. StepPlan(groups): checks everything before anything changes — options, dtypes,
//      devices, each gradient against its parameter, each precision combination, every
//      state buffer the kernel will read or write (dtype, size, device, layout) — and applies
//      the non-finite policy (error throws NonFiniteError, skip skips the whole step). It
//      lists the state each parameter still needs (StateRequest).
//   2. The front end creates the requested buffers (initialize_state fills them, on the host)
//      and points the views at them.
//   3. run(groups): checks the state views again, counts each parameter's step, derives
//      coefficients and rounding seeds with one scheme, and runs one fused kernel call per
//      (precision, device) of each group.
// Nothing in between can fail for a reason the user could cause, so a refused step changes
// nothing, in every front end alike.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "rmsprop/kernel.hpp"
#include "rmsprop/options.hpp"

namespace rmsprop {

// Where a buffer lives.
struct Device {
  enum class Kind : std::uint8_t { cpu, cuda, other };
  Kind kind = Kind::cpu;
  int index = 0;
  std::string_view name;  // Kind::other: the front end's name of it ("meta"), refused by name
  bool operator==(const Device&) const = default;
  std::string str() const;  // "cpu", "cuda:0", the name
  static Device cuda(int index) { return {Kind::cuda, index, {}}; }
  static Device other(int index, std::string_view name) { return {Kind::other, index, name}; }
};

// The most steps a parameter or an optimizer counts: 2^53, the largest count a double holds
// exactly (the coefficients take the step as a double, as in 1 - alpha^t). A step past it is
// refused, and so is a loaded count above it: every count this library writes, it reads back.
inline constexpr std::int64_t kMaxStepCount = std::int64_t(1) << 53;
// "" when `count` is a step count this library can hold (0 to kMaxStepCount), else why not.
std::string step_count_problem(std::int64_t count);

// A parameter's optimizer state buffers.
enum class Slot : std::uint8_t { square_avg, grad_avg, momentum_buffer, master };
inline constexpr std::size_t kSlots = 4;
std::string_view to_string(Slot slot);  // "square_avg", ..., "master_weights"

// A buffer as a front end holds it; null data means absent.
struct BufferView {
  void* data = nullptr;
  DType dtype = DType::f32;
  std::size_t size = 0;
  Device device{};
  bool contiguous = true;
  bool supported_dtype = true;  // false: the front end's dtype has no DType (dtype_name says)
  std::string_view dtype_name;  // the front end's name of an unsupported dtype
  // A complex buffer as its real view (kComplexDTypes): `dtype` its real dtype, `size` twice
  // its values. Its state is complex too, so it takes state in its own dtype only.
  bool complex = false;

  static BufferView of(void* data, DType dtype, std::size_t size, Device device = {}) {
    return {data, dtype, size, device, true, true, {}, false};
  }
  // The real view of a buffer of `values` complex values whose real dtype is `real`.
  static BufferView complex_of(void* data, DType real, std::size_t values, Device device = {}) {
    BufferView v = of(data, real, 2 * values, device);
    v.complex = true;
    return v;
  }
};

// The data pointer of a present buffer that has none (an empty tensor's, a meta tensor's
// may be null): the planner reads null as absent, and never reads through this one.
void* unread_data();

// One parameter of a group, as it stands before the step.
struct ParamView {
  BufferView param;
  BufferView grad;  // null data: no gradient this step; the parameter does not step
  std::array<BufferView, kSlots> state{};
  std::int64_t step = 0;  // steps taken so far; run() counts this one
  std::size_t index = 0;  // its index in the group: messages and rounding seeds
  // A capturable group's step count: a device int64 the kernel counts (`step` is unused).
  std::int64_t* device_step = nullptr;
  // A row (sparse) gradient, which the front end steps itself after run() (rmsprop/sparse.hpp):
  // `grad` views its values (what the non-finite policy reads); the planner checks the
  // parameter and its state, asks for the state and counts the step, and runs no kernel.
  bool rows = false;
};

// A state buffer the front end must provide before run(): `size` values of `dtype` on the
// parameter's device, initialised as `init` says.
struct StateRequest {
  enum class Init : std::uint8_t {
    value,       // every element `value` (square_avg: initial_accumulator_value; others 0)
    from_param,  // the parameter's values (the float32 master copy of a 16-bit parameter)
    from_old,    // the slot's present buffer converted to `dtype` (the state dtype changed)
  };
  std::size_t param = 0;  // index into the group's ParamView list
  Slot slot = Slot::square_avg;
  DType dtype = DType::f32;
  std::size_t size = 0;
  Init init = Init::value;
  double value = 0;
};

// Fills `buffer` (request.size values of request.dtype on the parameter's device) as `request`
// asks, reading the parameter or the old buffer of `param`. On the host; a CUDA parameter's
// buffers are staged through host copies (cuda::copy_synchronously: it waits for the device).
void initialize_state(const StateRequest& request, const ParamView& param, void* buffer);

// One parameter group as the planner sees it.
struct GroupView {
  const Options* options = nullptr;
  double lr = 0;          // this step's learning rate (after any schedule)
  std::size_t group = 0;  // its index: messages and rounding seeds
  std::span<ParamView> params;
  // Capturable (CUDA graphs; cuda::capturable_step): nothing of the step is read on the host.
  // Non-null: the learning rate is this device float64 (`lr` unused), every parameter is on
  // one CUDA device with its ParamView::device_step, and the non-finite policy skip is decided
  // on the device into *device_skip (a device int32 the front end zeroes before the step;
  // required with skip); policy error, which needs a host read, is refused.
  const double* device_lr = nullptr;
  std::int32_t* device_skip = nullptr;
  // The front end allocates 8-bit state (DType::i8_block: storage_bytes(dtype, n) bytes) when
  // asked; a front end that does not yet is refused state_dtype=int8 by name.
  bool holds_state8 = false;

  static GroupView of(const Options& options, double lr, std::size_t group,
                      std::span<ParamView> params) {
    return {&options, lr, group, params, nullptr, nullptr, false};
  }
};

// The first non-finite value among buffers: which buffer, which element, its value.
struct NonFiniteHit {
  std::size_t buffer = 0;
  std::size_t element = 0;
  double value = 0;
};

// What the planner needs of a front end for CUDA tensors: a context to queue work in (the
// device made current, the stream the front end's own work is queued on). The non-finite
// scan (cuda::find_non_finite, cuda::flag_non_finite) and the kernels run in it, in order.
struct DeviceHooks {
  std::function<void(Device, const std::function<void(void* stream)>&)> launch;
};

class StepPlan {
 public:
  // Step 1 of NOTE: [step planner]. Throws InvalidOption, InvalidArgument (naming the group,
  // parameter and buffer) or NonFiniteError; changes nothing.
  StepPlan(std::span<const GroupView> groups, const KernelConfig& config,
           const DeviceHooks& hooks = {});

  // The non-finite policy skip found a NaN or inf: run() does nothing.
  bool skipped() const { return skipped_; }
  // Parameters whose gradient holds NaN or inf (under the policies skip and propagate).
  std::size_t non_finite() const { return non_finite_; }
  // Parameters that step (those with a gradient), over all groups.
  std::size_t stepping() const { return stepping_; }
  // The state group `group` (its position in the list) still needs, in parameter order.
  std::span<const StateRequest> requests(std::size_t group) const { return requests_[group]; }
  // The precision parameter `param` of group `group` steps with.
  const Precision& precision(std::size_t group, std::size_t param) const {
    return precisions_[group][param];
  }

  // Step 3 of NOTE: [step planner], over the same groups with the requested state in place.
  // Each stepping parameter's ParamView::step grows by one.
  void run(std::span<const GroupView> groups, const KernelConfig& config,
           const DeviceHooks& hooks = {}) const;

 private:
  bool skipped_ = false;
  std::size_t non_finite_ = 0;
  std::size_t stepping_ = 0;
  std::vector<std::vector<StateRequest>> requests_;
  std::vector<std::vector<Precision>> precisions_;
};

// The refusal of a parameter's dtype (and size: state8_min_size) under a group's options, or
// "" when they go together: what StepPlan says, and what the optimizers say when a group is
// added or its options set.
std::string precision_problem(DType dtype, const Options& options, std::size_t size);

}  // namespace rmsprop
