// `_core.TorchStepper`: the step of rmsprop.torch.RMSprop, as an adapter over the planner.
//
// NOTE: [torch stepper] Python hands over the groups (typed options, lr, the parameter list)
// and the optimizer's state container once per step; everything per parameter happens here,
// in C++, against a cache: each parameter's view (pointers, dtype, device) is rebuilt only
// when what it was built from changed — the parameter's storage (`p.data = ...`), its
// gradient object or storage, a state tensor (load_state_dict, a user's assignment), the
// state container. A hit costs a few attribute reads, so a 4096-tensor model pays well under
// a microsecond per parameter. Describing a tensor, creating state and the CUDA hooks are
// Python callables (torch is Python's business here: this module includes no torch header).
// The planner does the checks, the non-finite policy, seeds, grouping and kernels
// (NOTE: [step planner]), so a refused step changes nothing, as in every front end.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "rmsprop/error.hpp"
#include "rmsprop/step_plan.hpp"

namespace py = pybind11;

namespace rmsprop::python {
namespace {

// The state dict keys of the slots, and of the step count.
constexpr std::array<const char*, kSlots> kSlotKeys = {"square_avg", "grad_avg", "momentum_buffer",
                                                       "master_weights"};

// t.data_ptr(); 0 for a tensor without storage (a sparse gradient) when `or_zero`.
std::uintptr_t data_ptr(PyObject* tensor, bool or_zero = false) {
  static PyObject* const name = PyUnicode_InternFromString("data_ptr");
  PyObject* args[] = {tensor};
  PyObject* result =
      PyObject_VectorcallMethod(name, args, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
  if (result == nullptr && or_zero) {
    PyErr_Clear();
    return 0;
  }
  if (result == nullptr) throw py::error_already_set();
  const auto value = std::uintptr_t(PyLong_AsVoidPtr(result));
  Py_DECREF(result);
  return value;
}

// A tensor as Python's describe(t) tells it: (data_ptr, numel, dtype name, device type,
// device index, contiguous).
BufferView view_from(const py::handle& description) {
  const auto t = description.cast<py::tuple>();
  BufferView v;
  v.data = reinterpret_cast<void*>(t[0].cast<std::uintptr_t>());
  v.size = t[1].cast<std::size_t>();
  const auto dtype_name = t[2].cast<std::string>();
  const std::optional<DType> dtype = dtype_named(dtype_name);
  v.dtype = dtype.value_or(DType::f32);
  v.supported_dtype = dtype.has_value();
  if (const std::optional<DType> real = complex_real_dtype(dtype_name)) {
    v.dtype = *real, v.supported_dtype = true, v.complex = true;  // its real view
    v.size *= 2;
  }
  if (!v.supported_dtype) v.dtype_name = intern(dtype_name);
  const auto device = t[3].cast<std::string>();
  const int index = t[4].cast<int>();
  v.device = device == "cpu"    ? Device{}
             : device == "cuda" ? Device::cuda(index)
                                : Device::other(index, intern(device));
  v.contiguous = t[5].cast<bool>();
  // torch's empty tensors (and tensors on devices such as meta, which the planner refuses by
  // name) have data_ptr 0, which the planner reads as "absent": they get a pointer that is
  // never read instead
  if (v.data == nullptr && (v.size == 0 || v.device.kind == Device::Kind::other)) {
    v.data = unread_data();
  }
  return v;
}

// What one parameter's view was built from (strong references, but to the gradient: the
// cache must not keep a gradient alive after zero_grad(set_to_none=True); its address and
// storage are compared instead, and torch keeps a gradient's dtype, size and device those of
// its parameter).
// A step count kept in a host scalar tensor of float32, float64 or int64.
struct StepCount {
  void* data = nullptr;
  std::string dtype;
  std::int64_t read() const {
    if (dtype == "float32") return std::int64_t(*static_cast<const float*>(data));
    if (dtype == "float64") return std::int64_t(*static_cast<const double*>(data));
    return *static_cast<const std::int64_t*>(data);
  }
  void write(std::int64_t step) const {
    if (dtype == "float32") {
      *static_cast<float*>(data) = float(step);
    } else if (dtype == "float64") {
      *static_cast<double*>(data) = double(step);
    } else {
      *static_cast<std::int64_t*>(data) = step;
    }
  }
};

struct Entry {
  py::object param;
  std::uintptr_t param_ptr = 0;
  bool described = false;
  PyObject* grad = nullptr;  // borrowed: identity only
  std::uintptr_t grad_ptr = 0;
  py::object grad_values;  // a sparse gradient's values (contiguous): what the scan reads
  bool sparse = false;
  py::object state;      // the parameter's state dict (made when it first has a gradient)
  bool adopted = false;  // `state` is in the optimizer's state (a new one only once it steps)
  std::array<py::object, kSlots> slots;
  // A strided (non-contiguous) dense parameter steps in a contiguous stand-in: its values
  // copied in before the step and out after (NOTE: [strided parameters]).
  BufferView param_view;  // the parameter itself, as described
  py::object staging;
  BufferView staging_view;
  py::object device_step;  // capturable: the device int64 step tensor
  py::object step_tensor;  // the last non-int step seen, and what it is
  StepCount step_count;
  ParamView view;
};

struct Group {
  Options options;
  std::vector<Entry> entries;
  std::vector<ParamView> views;  // the planner's copy, refreshed every step
};

class TorchStepper {
 public:
  explicit TorchStepper(py::object callbacks) : callbacks_(std::move(callbacks)) {}

  // Builds this step's views and plans it: everything is checked, nothing changed. Returns
  // the (group, parameter) pairs with sparse gradients, which Python checks and steps after
  // run() (the row kernel, rmsprop/sparse.hpp).
  std::vector<std::pair<std::size_t, std::size_t>> prepare(const py::list& groups,
                                                           const py::object& state, int threads) {
    plan_.reset();
    if (!state.is(state_)) {  // load_state_dict replaced the container
      groups_.clear();
      state_ = state;
    }
    groups_.resize(groups.size());
    views_.clear();
    std::vector<std::pair<std::size_t, std::size_t>> sparse;
    for (std::size_t gi = 0; gi < groups.size(); ++gi) {
      const auto spec = groups[gi].cast<py::tuple>();
      Group& g = groups_[gi];
      g.options = spec[0].cast<Options>();
      const auto params = spec[2].cast<py::list>();
      const auto device_lr = spec[3].cast<std::uintptr_t>();
      refresh(g, gi, params, device_lr != 0);
      g.views.clear();
      for (std::size_t i = 0; i < g.entries.size(); ++i) {
        const Entry& e = g.entries[i];
        g.views.push_back(e.view);
        g.views.back().rows = e.sparse && e.grad != nullptr;
        if (g.views.back().rows) sparse.emplace_back(gi, i);
      }
      GroupView view = GroupView::of(g.options, spec[1].cast<double>(), gi, g.views);
      view.holds_state8 = true;
      if (device_lr != 0) {
        view.device_lr = reinterpret_cast<const double*>(device_lr);
        view.device_skip = reinterpret_cast<std::int32_t*>(spec[4].cast<std::uintptr_t>());
        for (std::size_t i = 0; i < g.entries.size(); ++i) {
          if (g.views[i].grad.data != nullptr) g.views[i].device_step = device_step(g.entries[i]);
        }
      }
      views_.push_back(view);
    }
    config_ = {threads, {}};
    hooks_ = hooks();
    {
      py::gil_scoped_release release;
      plan_ = std::make_unique<StepPlan>(views_, config_, hooks_);
    }
    return sparse;
  }

  // Creates the state the plan asked for, runs it and writes the step counts back. False
  // when the non-finite policy skip skipped the step.
  bool run() {
    if (!plan_) throw InvalidArgument("TorchStepper.run() without a successful prepare()");
    const std::unique_ptr<StepPlan> plan = std::move(plan_);
    if (plan->skipped()) return false;
    for (std::size_t gi = 0; gi < groups_.size(); ++gi) {
      Group& g = groups_[gi];
      for (const StateRequest& r : plan->requests(gi)) {
        Entry& e = g.entries[r.param];
        const std::size_t s = std::size_t(r.slot);
        static constexpr const char* kInit[] = {"value", "from_param", "from_old"};
        py::object t;
        if (r.dtype == DType::i8_block || e.view.state[s].dtype == DType::i8_block) {
          // 8-bit state, made or converted from: an empty tensor that the core fills (the old
          // one stays alive in e.slots until then)
          t = callbacks_.attr("allocate")(e.param, e.state, kSlotKeys[s],
                                          std::string(to_string(r.dtype)), "empty",
                                          double(storage_bytes(r.dtype, r.size)));
          const BufferView made = describe_state(t, r.size);
          py::gil_scoped_release release;
          initialize_state(r, e.view, made.data);
        } else {
          t = callbacks_.attr("allocate")(e.param, e.state, kSlotKeys[s],
                                          std::string(to_string(r.dtype)), kInit[int(r.init)],
                                          r.value);
        }
        e.slots[s] = t;
        e.view.state[s] = describe_state(t, r.size);
        g.views[r.param].state[s] = e.view.state[s];
      }
    }
    {
      py::gil_scoped_release release;
      plan->run(views_, config_, hooks_);
    }
    for (Group& g : groups_) {  // strided parameters get their stand-in's values
      for (std::size_t i = 0; i < g.entries.size(); ++i) {
        Entry& e = g.entries[i];
        if (g.views[i].grad.data != nullptr && e.staging &&
            e.view.param.data == e.staging_view.data) {
          callbacks_.attr("copy")(e.param, e.staging);
        }
      }
    }
    static PyObject* const step_key = PyUnicode_InternFromString("step");
    for (Group& g : groups_) {
      for (std::size_t i = 0; i < g.entries.size(); ++i) {
        Entry& e = g.entries[i];
        if (g.views[i].grad.data == nullptr) continue;
        if (!e.adopted) {  // a parameter's first step: its state joins the optimizer's
          callbacks_.attr("adopt")(state_, e.param, e.state);
          e.adopted = true;
        }
        if (g.views[i].device_step != nullptr) continue;
        e.view.step = g.views[i].step;
        PyObject* step = PyDict_GetItem(e.state.ptr(), step_key);  // borrowed
        if (step != nullptr && !PyLong_CheckExact(step) && host_step(e, step)) {
          e.step_count.write(e.view.step);  // torch 2.x's scalar tensor, in place
          continue;
        }
        const py::int_ count(e.view.step);
        if (PyDict_SetItem(e.state.ptr(), step_key, count.ptr()) != 0)
          throw py::error_already_set();
      }
    }
    return true;
  }

  // Forget every cached view (the next step describes every tensor again).
  void clear() {
    plan_.reset();
    groups_.clear();
    state_ = py::none();
  }

 private:
  BufferView describe(const py::handle& tensor) {
    return view_from(callbacks_.attr("describe")(tensor));
  }

  // A state tensor: as describe, except that a uint8 tensor is 8-bit state whose bytes hold
  // the parameter's `size` values (NOTE: [8-bit state] in rmsprop/state8.hpp).
  BufferView describe_state(const py::handle& tensor, std::size_t size) {
    BufferView v = describe(tensor);
    if (!v.supported_dtype && v.dtype_name == "torch.uint8") {
      v.dtype = DType::i8_block;
      v.supported_dtype = true;
      v.dtype_name = "";
      v.size = state_values_in(DType::i8_block, v.size, size);
    }
    return v;
  }

  // The group's entries brought up to date with its parameter list and their tensors.
  void refresh(Group& g, std::size_t gi, const py::list& params, bool capturable) {
    static PyObject* const grad_key = PyUnicode_InternFromString("grad");
    static PyObject* const step_key = PyUnicode_InternFromString("step");
    const std::size_t n = params.size();
    if (g.entries.size() != n) g.entries.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      Entry& e = g.entries[i];
      PyObject* p = PyList_GET_ITEM(params.ptr(), Py_ssize_t(i));
      if (!e.param.is(py::handle(p))) {
        e = Entry{};
        e.param = py::reinterpret_borrow<py::object>(p);
      }
      e.view.index = i;
      // the parameter's storage (p.data = ... moves it, and may change its dtype)
      const std::uintptr_t param_ptr = data_ptr(p);
      if (param_ptr != e.param_ptr || !e.described) {
        e.param_view = e.view.param = describe(e.param);
        e.staging = py::object();
        e.param_ptr = param_ptr;
        e.described = true;
        for (auto& slot : e.slots) slot = py::object();  // described again for its size
      }
      // the gradient: None (no step this time), the same tensor, or another
      const auto grad = py::reinterpret_steal<py::object>(PyObject_GetAttr(p, grad_key));
      if (!grad) throw py::error_already_set();
      if (grad.is_none()) {
        e.grad = nullptr;
        e.view.grad = {};
        e.sparse = false;
        continue;  // its state is not read: it does not step
      }
      const std::uintptr_t grad_ptr = data_ptr(grad.ptr(), /*or_zero=*/true);
      if (grad.ptr() != e.grad || grad_ptr != e.grad_ptr || grad_ptr == 0) {
        const auto described = callbacks_.attr("describe_grad")(grad).cast<py::tuple>();
        e.grad = grad.ptr();
        e.grad_ptr = grad_ptr;
        e.view.grad = view_from(described[0]);
        e.sparse = described[1].cast<bool>();
        e.grad_values = described[2];
        // a contiguous copy of a strided gradient: made again at every step (the gradient may
        // change in place)
        if (!e.sparse && !e.grad_values.is_none()) e.grad = nullptr;
      }
      // NOTE: [strided parameters]
      // A strided dense parameter (a view, a slice, a transpose: torch steps them) steps in a
      // contiguous stand-in, gathered here and scattered after the kernels (run()): the
      // contiguous fast path is untouched, and only such parameters pay two copies. Row
      // (sparse) steps run on the parameter itself, in Python.
      const bool strided = !e.param_view.contiguous && e.param_view.supported_dtype && !e.sparse;
      if (strided) {
        if (!e.staging) {
          e.staging = callbacks_.attr("stage")(e.param);
          e.staging_view = describe(e.staging);
        }
        callbacks_.attr("copy")(e.staging, e.param);
        e.view.param = e.staging_view;
      } else {
        e.view.param = e.param_view;
      }
      // the state tensors present, each as it stands in the state dict
      if (!e.state) {
        const auto found = callbacks_.attr("state_of")(state_, e.param).cast<py::tuple>();
        e.state = found[0];
        e.adopted = found[1].cast<bool>();
      }
      PyObject* state = e.state.ptr();
      for (std::size_t s = 0; s < kSlots; ++s) {
        PyObject* t = PyDict_GetItemString(state, kSlotKeys[s]);  // borrowed
        if (t == nullptr) {
          e.slots[s] = py::object();
          e.view.state[s] = {};
        } else if (!e.slots[s].is(py::handle(t))) {
          e.slots[s] = py::reinterpret_borrow<py::object>(t);
          e.view.state[s] = describe_state(e.slots[s], e.view.param.size);
        }
      }
      // the step count: an int (ours), absent (a new parameter), or a tensor (torch 2.x's
      // state dicts; a capturable run's device count, read once when stepped eagerly)
      PyObject* step = PyDict_GetItem(state, step_key);  // borrowed
      e.view.step = 0;
      if (capturable || step == nullptr) continue;  // capturable: device_step()
      if (PyLong_CheckExact(step)) {
        e.view.step = PyLong_AsLongLong(step);
      } else if (host_step(e, step)) {
        e.view.step = e.step_count.read();
      } else {
        const auto count = py::reinterpret_steal<py::object>(PyNumber_Long(step));
        if (!count) throw py::error_already_set();
        e.view.step = PyLong_AsLongLong(count.ptr());
      }
      if (PyErr_Occurred()) throw py::error_already_set();
      if (e.view.step < 0) {
        throw InvalidArgument("group " + std::to_string(gi) + ", parameter " + std::to_string(i) +
                              " has a negative step count " + std::to_string(e.view.step));
      }
    }
  }

  // Whether `step` is a host scalar tensor (torch 2.x keeps step counts so), read and written
  // through its pointer: Python says once per tensor.
  bool host_step(Entry& e, PyObject* step) {
    if (!e.step_tensor.is(py::handle(step))) {
      e.step_tensor = py::reinterpret_borrow<py::object>(step);
      e.step_count = {};
      const py::object found = callbacks_.attr("host_step")(e.step_tensor);
      if (!found.is_none()) {
        const auto t = found.cast<py::tuple>();
        e.step_count = {reinterpret_cast<void*>(t[0].cast<std::uintptr_t>()),
                        t[1].cast<std::string>()};
      }
    }
    return e.step_count.data != nullptr;
  }

  // A capturable parameter's step count on its device (Python converts an int).
  std::int64_t* device_step(Entry& e) {
    static PyObject* const step_key = PyUnicode_InternFromString("step");
    PyObject* step = PyDict_GetItem(e.state.ptr(), step_key);
    if (step == nullptr || !e.device_step.is(py::handle(step))) {
      e.device_step = callbacks_.attr("device_step")(e.param, e.state);
    }
    return reinterpret_cast<std::int64_t*>(data_ptr(e.device_step.ptr()));
  }

  // The planner's CUDA hook: its scans and kernels in torch's device context and stream.
  DeviceHooks hooks() {
    DeviceHooks h;
    h.launch = [this](Device device, const std::function<void(void*)>& body) {
      py::gil_scoped_acquire acquire;
      std::exception_ptr failed;
      const py::cpp_function call([&](std::uintptr_t stream) {
        try {
          body(reinterpret_cast<void*>(stream));
        } catch (...) {
          failed = std::current_exception();
        }
      });
      callbacks_.attr("launch")(device.index, call);
      if (failed) std::rethrow_exception(failed);
    };
    return h;
  }

  py::object callbacks_;
  py::object state_ = py::none();
  std::vector<Group> groups_;
  std::vector<GroupView> views_;
  KernelConfig config_{};
  DeviceHooks hooks_;
  std::unique_ptr<StepPlan> plan_;
};

}  // namespace

void bind_torch_stepper(py::module_& m) {
  py::class_<TorchStepper>(m, "TorchStepper",
                           "rmsprop.torch.RMSprop's step over the planner (NOTE: [torch stepper])")
      .def(py::init<py::object>(), py::arg("callbacks"))
      .def("prepare", &TorchStepper::prepare, py::arg("groups"), py::arg("state"),
           py::arg("threads") = 0,
           "checks and plans a step of groups [(options, lr, params, device_lr, device_skip)]; "
           "returns the (group, parameter) pairs with sparse gradients")
      .def("run", &TorchStepper::run, "runs the prepared step; False when it was skipped")
      .def("clear", &TorchStepper::clear, "forgets every cached view");
}

}  // namespace rmsprop::python
