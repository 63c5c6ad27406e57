// The Python extension `rmsprop._core`: the fused kernels and the C++ optimizer for NumPy
// arrays, with the GIL released while kernels run.
//
// It includes no torch header and links no torch library: tensors arrive as (data pointer,
// element count) pairs checked on the Python side, which also keeps every tensor alive for
// the duration of the call (see NOTE: [lifetimes] in rmsprop/torch.py).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "bindings.hpp"
#include "rmsprop/cuda.hpp"
#include "rmsprop/error.hpp"
#include "rmsprop/kernel.hpp"
#include "rmsprop/optimizer.hpp"
#include "rmsprop/sparse.hpp"
#include "rmsprop/step_plan.hpp"

namespace py = pybind11;

namespace {

using rmsprop::python::dtype_from;

// NOTE: [typed options] Python passes options as Python values (float, bool, str, None),
// converted once by the option table's kinds into a validated rmsprop::Options that Python
// keeps per parameter group: no text travels per step. A str is read as the CLI reads text.
py::object to_python(const rmsprop::OptionValue& value) {
  if (const double* x = std::get_if<double>(&value)) return py::float_(*x);
  if (const bool* b = std::get_if<bool>(&value)) return py::bool_(*b);
  if (const std::string* text = std::get_if<std::string>(&value)) return py::str(*text);
  return py::none();
}

// A value of the wrong type is a TypeError, a bad value of the right type a ValueError
// (InvalidOption), as torch.optim raises them.
rmsprop::OptionValue from_python(const rmsprop::OptionInfo& info, py::handle value) {
  using rmsprop::OptionKind;
  auto refuse = [&](const char* expected) {
    return py::type_error("invalid value for " + std::string(info.name) + ": expected " + expected +
                          ", got " + std::string(py::repr(value)));
  };
  if (py::isinstance<py::str>(value)) {
    if (info.kind == OptionKind::choice) return info.parse(value.cast<std::string>());
    try {  // a number or a bool as text, as the CLI reads it
      return info.parse(value.cast<std::string>());
    } catch (const rmsprop::InvalidOption& e) {
      throw py::type_error(e.what());
    }
  }
  switch (info.kind) {
    case OptionKind::number:
    case OptionKind::optional_number: {
      // __float__: Python and NumPy numbers, one-element tensors (a tensor lr); not bools
      if (py::isinstance<py::bool_>(value)) throw refuse("a number");
      PyObject* number = PyNumber_Float(value.ptr());
      if (number == nullptr) {
        PyErr_Clear();
        throw refuse("a number");
      }
      return py::reinterpret_steal<py::float_>(number).cast<double>();
    }
    case OptionKind::boolean: {
      // bool, numpy.bool_, or the integers 0 and 1
      const std::string type = py::str(py::type::handle_of(value).attr("__name__"));
      if (py::isinstance<py::bool_>(value) || type == "bool_") {
        return PyObject_IsTrue(value.ptr()) == 1;
      }
      if (py::isinstance<py::int_>(value)) {
        const long long x = value.cast<long long>();
        if (x == 0 || x == 1) return x == 1;
      }
      throw refuse("True or False");
    }
    case OptionKind::choice:
      break;
  }
  throw refuse("a name");
}

// The flavor's preset (None: torch's defaults), then every option of `values` that is not
// None (None leaves it to the flavor), validated. Unknown names raise InvalidOption.
rmsprop::Options options_from(const py::object& flavor, const py::dict& values) {
  rmsprop::Options o = flavor.is_none() ? rmsprop::Options{}
                                        : rmsprop::Options::from_flavor(rmsprop::flavor_from_string(
                                              py::str(flavor).cast<std::string>()));
  for (const auto& [key, value] : values) {
    if (value.is_none()) continue;
    const rmsprop::OptionInfo& info = rmsprop::option_info(py::str(key).cast<std::string>());
    info.set(o, from_python(info, value));
  }
  o.validate();
  return o;
}

// Every option, typed (an unset optional is None), by its name.
py::dict to_dict(const rmsprop::Options& o) {
  py::dict out;
  for (const rmsprop::OptionInfo& info : rmsprop::option_table())
    out[py::str(std::string(info.name))] = to_python(info.get(o));
  return out;
}

// Which state buffers the options' variant reads and writes.
std::tuple<bool, bool, bool> buffers_needed(const rmsprop::Options& o) {
  const auto v = rmsprop::variant_of(o);
  return {v.uses_square_avg(), v.uses_grad_avg(), v.uses_momentum_buffer()};
}

// The C++ optimizer over NumPy arrays. It holds references to every array it points into.
class NumpyOptimizer {
 public:
  NumpyOptimizer(const py::list& arrays, const rmsprop::Options& options) {
    std::vector<rmsprop::Param> params;
    for (std::size_t i = 0; i < arrays.size(); ++i) {
      py::array a = checked(arrays[i], "parameter", i);
      if (!a.writeable()) {
        throw rmsprop::InvalidArgument("parameter " + std::to_string(i) + " is read-only");
      }
      params.push_back({a.mutable_data(), nullptr, std::size_t(a.size()), dtype_of(a)});
      params_.push_back(a);
    }
    optimizer_ = std::make_unique<rmsprop::Optimizer>(std::move(params), options);
  }

  // One step with these gradients (same dtypes and sizes as the parameters), read in place:
  // the optimizer points at them only during this call.
  bool step(const py::list& grads) {
    if (grads.size() != params_.size()) {
      throw rmsprop::InvalidArgument("step() got " + std::to_string(grads.size()) +
                                     " gradients for " + std::to_string(params_.size()) +
                                     " parameters");
    }
    std::vector<py::array> held;  // alive until the step returns
    for (std::size_t i = 0; i < params_.size(); ++i) {
      py::array g = checked(grads[i], "gradient", i);
      if (g.dtype().not_equal(params_[i].dtype()) || g.size() != params_[i].size()) {
        throw rmsprop::InvalidArgument("gradient " + std::to_string(i) + " must have the dtype " +
                                       "and size of its parameter (" +
                                       std::to_string(params_[i].size()) + " values of " +
                                       std::string(py::str(params_[i].dtype())) + ")");
      }
      held.push_back(g);
    }
    for (std::size_t i = 0; i < params_.size(); ++i) {
      optimizer_->set_param(0, i, with_grad(i, const_cast<void*>(held[i].data())));
    }
    bool applied = false;
    try {
      py::gil_scoped_release release;
      applied = optimizer_->step().applied;
    } catch (...) {
      detach_grads();
      throw;
    }
    detach_grads();
    return applied;
  }

  void save(const std::string& path) const { optimizer_->save(path); }
  void load(const std::string& path) { optimizer_->load(path); }
  std::int64_t steps_taken() const { return optimizer_->steps_taken(); }
  const rmsprop::Options& options() const { return optimizer_->options(0); }

 private:
  rmsprop::Param with_grad(std::size_t i, void* grad) {
    return {params_[i].mutable_data(), grad, std::size_t(params_[i].size()), dtype_of(params_[i])};
  }
  void detach_grads() {
    for (std::size_t i = 0; i < params_.size(); ++i)
      optimizer_->set_param(0, i, with_grad(i, nullptr));
  }

  // The DType whose NumPy name is the array's (rmsprop/dtype.hpp), or nullopt.
  static std::optional<rmsprop::DType> numpy_dtype(const py::array& a) {
    const auto name = a.dtype().attr("name").cast<std::string>();
    for (const rmsprop::DTypeInfo& d : rmsprop::dtype_table())
      if (!d.numpy_name.empty() && d.numpy_name == name) return d.dtype;
    return std::nullopt;
  }
  static rmsprop::DType dtype_of(const py::array& a) { return *numpy_dtype(a); }
  static py::array checked(py::handle object, const char* what, std::size_t i) {
    if (!py::isinstance<py::array>(object)) {
      throw rmsprop::InvalidArgument(std::string(what) + " " + std::to_string(i) +
                                     " is not a NumPy array");
    }
    py::array a = py::reinterpret_borrow<py::array>(object);
    if (!numpy_dtype(a)) {
      std::string names;
      for (const rmsprop::DTypeInfo& d : rmsprop::dtype_table())
        if (!d.numpy_name.empty()) {
          if (!names.empty()) names += ", ";  // not a ternary + string: GCC 12's false -Wrestrict
          names += d.numpy_name;
        }
      throw rmsprop::InvalidArgument(std::string(what) + " " + std::to_string(i) + " has dtype " +
                                     std::string(py::str(a.dtype())) + "; NumPy arrays must be " +
                                     names);
    }
    if (!(a.flags() & py::array::c_style)) {
      throw rmsprop::InvalidArgument(std::string(what) + " " + std::to_string(i) +
                                     " is not C-contiguous; pass numpy.ascontiguousarray(x)");
    }
    return a;
  }

  std::vector<py::array> params_;  // kept alive: the optimizer points into them
  std::unique_ptr<rmsprop::Optimizer> optimizer_;
};

// One step of a [rows × row_size] parameter with a row gradient (rmsprop/sparse.hpp).
// buffers: (param, square_avg, grad_avg, momentum_buffer, master) pointers, 0 when absent;
// row_steps: the lazy mode's int64 per-row step counts (0 in dense mode).
void sparse_step(const rmsprop::Options& options, double lr, const std::string& dtype,
                 std::size_t rows, std::size_t row_size,
                 const std::tuple<std::uintptr_t, std::uintptr_t, std::uintptr_t, std::uintptr_t,
                                  std::uintptr_t>& buffers,
                 std::uintptr_t indices, std::size_t nnz, std::uintptr_t values,
                 const std::string& mode, std::int64_t step, std::uintptr_t row_steps,
                 int threads) {
  if (mode != "lazy" && mode != "dense") {
    throw rmsprop::InvalidOption("sparse_mode '" + mode + "': lazy or dense");
  }
  auto ptr = [](std::uintptr_t p) { return reinterpret_cast<void*>(p); };
  const auto& [param, square_avg, grad_avg, momentum_buffer, master] = buffers;
  const rmsprop::SparseParam p{ptr(param),
                               dtype_from(dtype),
                               rows,
                               row_size,
                               ptr(square_avg),
                               ptr(grad_avg),
                               ptr(momentum_buffer),
                               static_cast<float*>(ptr(master))};
  const rmsprop::RowGradient g{
      std::span<const std::int64_t>(reinterpret_cast<const std::int64_t*>(indices), nnz),
      ptr(values)};
  const bool lazy = mode == "lazy";
  std::span<std::int64_t> counts;
  if (lazy) counts = std::span<std::int64_t>(static_cast<std::int64_t*>(ptr(row_steps)), rows);
  py::gil_scoped_release release;
  rmsprop::sparse_step(options, lr, p, g,
                       lazy ? rmsprop::SparseMode::lazy : rmsprop::SparseMode::dense, step, counts,
                       {threads, {}});
}

// NOTE: [DLPack] The DLPack ABI (dmlc/dlpack, v0.x, what __dlpack__ returns in a capsule named
// "dltensor"): declared here rather than included, as it is a fixed, versioned C layout and
// Debian has no header for it. The consumer renames the capsule "used_dltensor" and calls the
// managed tensor's deleter when done with it.
struct DLDevice {
  std::int32_t device_type;  // 1 CPU, 2 CUDA
  std::int32_t device_id;
};
struct DLDataType {
  std::uint8_t code;  // 2 float, 4 bfloat
  std::uint8_t bits;
  std::uint16_t lanes;
};
struct DLTensor {
  void* data;
  DLDevice device;
  std::int32_t ndim;
  DLDataType dtype;
  std::int64_t* shape;
  std::int64_t* strides;  // null: compact row-major
  std::uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};

// An array received through DLPack, held until this object dies.
class DLPackView {
 public:
  explicit DLPackView(py::capsule capsule) {
    if (std::string(capsule.name() ? capsule.name() : "") != "dltensor") {
      throw rmsprop::InvalidArgument("not an unused DLPack capsule (named '" +
                                     std::string(capsule.name() ? capsule.name() : "") + "')");
    }
    managed_ = static_cast<DLManagedTensor*>(capsule.get_pointer());
    PyCapsule_SetName(capsule.ptr(), "used_dltensor");
    const DLTensor& t = managed_->dl_tensor;
    numel_ = 1;
    for (int d = 0; d < t.ndim; ++d) numel_ *= std::size_t(t.shape[d]);
    std::int64_t expected = 1;
    for (int d = t.ndim - 1; d >= 0 && t.strides != nullptr; --d) {
      if (t.shape[d] != 1 && t.strides[d] != expected) contiguous_ = false;
      expected *= t.shape[d];
    }
    if (const auto d = rmsprop::dtype_of_dlpack(t.dtype.code, t.dtype.bits, t.dtype.lanes)) {
      dtype_ = std::string(rmsprop::to_string(*d));
    }
    if (dtype_.empty()) {
      // DLPack's type codes (dlpack.h DLDataTypeCode), named as NumPy and torch name them
      static constexpr const char* kCodes[] = {"int",    "uint",    "float", "handle",
                                               "bfloat", "complex", "bool"};
      dtype_ = (t.dtype.code < std::size(kCodes) ? std::string(kCodes[t.dtype.code])
                                                 : "code" + std::to_string(t.dtype.code) + "_") +
               std::to_string(t.dtype.bits) +
               (t.dtype.lanes == 1 ? "" : "x" + std::to_string(t.dtype.lanes));
    }
  }
  ~DLPackView() {
    if (managed_ != nullptr && managed_->deleter != nullptr) managed_->deleter(managed_);
  }
  DLPackView(const DLPackView&) = delete;
  DLPackView& operator=(const DLPackView&) = delete;

  std::uintptr_t data() const {
    return reinterpret_cast<std::uintptr_t>(managed_->dl_tensor.data) +
           managed_->dl_tensor.byte_offset;
  }
  std::size_t numel() const { return numel_; }
  const std::string& dtype() const { return dtype_; }
  bool contiguous() const { return contiguous_; }
  // As the planner sees it (NOTE: [step planner]).
  rmsprop::BufferView view() const {
    rmsprop::BufferView v;
    v.data = reinterpret_cast<void*>(data());
    const auto dtype = rmsprop::dtype_named(dtype_);
    v.dtype = dtype.value_or(rmsprop::DType::f32);
    v.supported_dtype = dtype.has_value();
    if (!dtype) v.dtype_name = rmsprop::python::intern(dtype_);
    v.size = numel_;
    const DLDevice& d = managed_->dl_tensor.device;
    v.device = d.device_type == 1 ? rmsprop::Device{}
               : d.device_type == 2
                   ? rmsprop::Device::cuda(d.device_id)
                   : rmsprop::Device::other(d.device_id, rmsprop::python::intern(device()));
    v.contiguous = contiguous_;
    if (v.data == nullptr && v.size == 0) v.data = rmsprop::unread_data();
    return v;
  }
  std::string device() const {
    const DLDevice& d = managed_->dl_tensor.device;
    if (d.device_type == 1) return "cpu";
    if (d.device_type == 2) return "cuda:" + std::to_string(d.device_id);
    return "dlpack-device-" + std::to_string(d.device_type) + ":" + std::to_string(d.device_id);
  }

 private:
  DLManagedTensor* managed_ = nullptr;
  std::size_t numel_ = 0;
  std::string dtype_;
  bool contiguous_ = true;
};

// One step of DLPack arrays (rmsprop.step): parameter i with gradient i and state[s][i] for
// the slots square_avg, grad_avg, momentum_buffer (None where absent), all through the
// planner; the caller owns the state, so a missing or misfit buffer is refused, never made.
// `step` is this step's number (every parameter's), `stream` the CUDA stream for device
// arrays (their device must be current).
void dlpack_step(const rmsprop::Options& options, double lr, const std::vector<DLPackView*>& params,
                 const std::vector<DLPackView*>& grads,
                 const std::vector<std::vector<DLPackView*>>& state, std::int64_t step, int threads,
                 std::uintptr_t stream) {
  using namespace rmsprop;
  if (grads.size() != params.size() || state.size() != 3) {
    throw InvalidArgument("dlpack_step: " + std::to_string(grads.size()) + " gradients for " +
                          std::to_string(params.size()) + " parameters");
  }
  if (step < 1) throw InvalidArgument("step=" + std::to_string(step) + ": must be >= 1");
  std::vector<ParamView> views(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    views[i].param = params[i]->view();
    views[i].grad = grads[i]->view();
    views[i].index = i;
    views[i].step = step - 1;
    for (std::size_t s = 0; s < 3; ++s) {
      if (state[s].size() != params.size()) {
        throw InvalidArgument("dlpack_step: state slot " + std::to_string(s) + " has " +
                              std::to_string(state[s].size()) + " arrays for " +
                              std::to_string(params.size()) + " parameters");
      }
      if (state[s][i] != nullptr) views[i].state[s] = state[s][i]->view();
    }
  }
  const GroupView group = GroupView::of(options, lr, 0, views);
  const KernelConfig config{threads, {}};
  DeviceHooks hooks;
  hooks.launch = [stream](Device, const std::function<void(void*)>& body) {
    body(reinterpret_cast<void*>(stream));
  };
  py::gil_scoped_release release;
  const StepPlan plan({&group, 1}, config, hooks);
  for (const StateRequest& r : plan.requests(0)) {
    const ParamView& p = views[r.param];
    throw InvalidArgument(
        "parameter " + std::to_string(r.param) + " needs state '" + std::string(to_string(r.slot)) +
        "' as " + std::to_string(r.size) + " " + std::string(to_string(r.dtype)) + " on " +
        p.param.device.str() +
        (p.state[std::size_t(r.slot)].data
             ? "; the array given is " + std::string(to_string(p.state[std::size_t(r.slot)].dtype))
             : std::string()));
  }
  plan.run({&group, 1}, config, hooks);
}

// The same step over arrays given once (the DLPackViews stay alive with this object): what the
// step costs with no per-array conversion per call (bench/python_optimizer_bench.py's "kernel").
class DLPackStepper {
 public:
  DLPackStepper(const rmsprop::Options& options, py::list params, py::list grads, py::list state)
      : options_(options), keep_(py::make_tuple(params, grads, state)) {
    params_ = params.cast<std::vector<DLPackView*>>();
    grads_ = grads.cast<std::vector<DLPackView*>>();
    state_ = state.cast<std::vector<std::vector<DLPackView*>>>();
  }
  void step(double lr, std::int64_t step, int threads, std::uintptr_t stream) {
    dlpack_step(options_, lr, params_, grads_, state_, step, threads, stream);
  }

 private:
  rmsprop::Options options_;
  py::tuple keep_;  // the views' owners
  std::vector<DLPackView*> params_, grads_;
  std::vector<std::vector<DLPackView*>> state_;
};

}  // namespace

namespace rmsprop::python {

DType dtype_from(const std::string& name) {
  if (const auto d = dtype_named(name)) return *d;
  throw InvalidArgument("unsupported dtype '" + name + "' (" + dtype_names() + ")");
}

std::string_view intern(const std::string& text) {
  static std::set<std::string> texts;  // a handful of dtype names at most
  return *texts.insert(text).first;
}

// A Python exception type for the C++ error E. The message is decoded with backslashreplace:
// bytes of a damaged file can reach it (an option name with a flipped bit), and pybind11's own
// translation of a message that is not valid UTF-8 raised the exception with no message.
template <class E>
void register_error(py::module_& m, const char* name, PyObject* base) {
  static const py::exception<E> type(m, name, base);
  py::register_exception_translator([](std::exception_ptr thrown) {
    try {
      if (thrown) std::rethrow_exception(thrown);
    } catch (const E& e) {
      const std::string_view what = e.what();
      const auto text = py::reinterpret_steal<py::object>(
          PyUnicode_DecodeUTF8(what.data(), Py_ssize_t(what.size()), "backslashreplace"));
      PyErr_SetObject(type.ptr(), text.ptr());
    }
  });
}

}  // namespace rmsprop::python

PYBIND11_MODULE(_core, m) {
  using rmsprop::python::register_error;
  m.doc() = "rmsprop's fused kernels and C++ optimizer (no torch dependency)";
  register_error<rmsprop::InvalidOption>(m, "InvalidOption", PyExc_ValueError);
  register_error<rmsprop::InvalidArgument>(m, "InvalidArgument", PyExc_ValueError);
  register_error<rmsprop::NonFiniteError>(m, "NonFiniteError", PyExc_FloatingPointError);
  register_error<rmsprop::CheckpointError>(m, "CheckpointError", PyExc_OSError);
  register_error<rmsprop::cuda::NotBuiltWithCuda>(m, "NotBuiltWithCuda", PyExc_RuntimeError);
  register_error<rmsprop::cuda::CudaError>(m, "CudaError", PyExc_RuntimeError);
  rmsprop::python::bind_torch_stepper(m);
  py::class_<rmsprop::Options>(m, "Options", "validated options (build with rmsprop._core.options)")
      .def("to_dict", &to_dict, "every option by name, typed (an unset optional is None)")
      .def("buffers_needed", &buffers_needed,
           "(square_avg, grad_avg, momentum_buffer): which state the variant uses")
      .def("__eq__", [](const rmsprop::Options& a, const rmsprop::Options& b) { return a == b; })
      .def("__repr__", [](const rmsprop::Options& o) {
        std::string text = "rmsprop.Options(";
        for (const auto& [name, value] : o.to_pairs()) {
          text += (text.back() == '(' ? "" : ", ") + name + "=" + value;
        }
        return text + ")";
      });
  m.def("options", &options_from, py::arg("flavor"), py::arg("values"),
        "the flavor's preset (None: torch's), then every value that is not None; validated");
  m.def(
      "option_table",
      [] {
        py::list rows;
        for (const rmsprop::OptionInfo& info : rmsprop::option_table()) {
          static constexpr const char* kKinds[] = {"number", "optional_number", "bool", "choice"};
          py::list choices;
          for (std::string_view c : info.choices) choices.append(py::str(std::string(c)));
          py::dict row;
          row["name"] = std::string(info.name);
          row["kind"] = kKinds[int(info.kind)];
          row["choices"] = choices;
          row["keras_name"] = std::string(info.keras_name);
          row["help"] = std::string(info.help);
          row["flag"] = info.flag();
          rows.append(row);
        }
        return rows;
      },
      "the option table: name, kind, choices, keras_name, help, flag of every option");
  m.def("dlpack_step", &dlpack_step, py::arg("options"), py::arg("lr"), py::arg("params"),
        py::arg("grads"), py::arg("state"), py::arg("step"), py::arg("threads") = 0,
        py::arg("stream") = 0,
        "one planned step of DLPack arrays (rmsprop.step): state = [square_avg, grad_avg, "
        "momentum_buffer] lists, None where absent");
  py::class_<DLPackStepper>(m, "DLPackStepper")
      .def(py::init<const rmsprop::Options&, py::list, py::list, py::list>(), py::arg("options"),
           py::arg("params"), py::arg("grads"), py::arg("state"))
      .def("step", &DLPackStepper::step, py::arg("lr"), py::arg("step"), py::arg("threads") = 0,
           py::arg("stream") = 0);
  m.def(
      "dtype_table",
      [] {
        py::list rows;
        for (const rmsprop::DTypeInfo& d : rmsprop::dtype_table()) {
          py::dict row;
          row["name"] = std::string(d.name);
          row["size"] = d.size;
          row["numpy_name"] = std::string(d.numpy_name);
          rows.append(row);
        }
        return rows;
      },
      "the storage types: name, size, numpy_name of each");
  m.attr("MAX_STEP_COUNT") = rmsprop::kMaxStepCount;
  m.def(
      "state8_bytes", [](std::size_t n) { return rmsprop::state8_bytes(n); }, py::arg("n"),
      "the bytes 8-bit state of n values takes (codes and block scales)");
  m.def("cuda_built", &rmsprop::cuda::built);
  m.def("cuda_device_count", &rmsprop::cuda::device_count);
  m.def("cuda_device_problem", &rmsprop::cuda::device_problem);
  m.def("sparse_step", &sparse_step, py::arg("options"), py::arg("lr"), py::arg("dtype"),
        py::arg("rows"), py::arg("row_size"), py::arg("buffers"), py::arg("indices"),
        py::arg("nnz"), py::arg("values"), py::arg("mode"), py::arg("step"), py::arg("row_steps"),
        py::arg("threads") = 0);
  m.def("simd_target",
        [] { return std::string(rmsprop::to_string(rmsprop::default_simd_target())); });
  m.def("flavors", [] {
    std::vector<std::string> names;
    for (auto f : rmsprop::all_flavors()) names.emplace_back(rmsprop::to_string(f));
    return names;
  });
  py::class_<DLPackView>(m, "DLPackView")
      .def(py::init<py::capsule>(), py::arg("capsule"))
      .def_property_readonly("data", &DLPackView::data)
      .def_property_readonly("numel", &DLPackView::numel)
      .def_property_readonly("dtype", &DLPackView::dtype)
      .def_property_readonly("contiguous", &DLPackView::contiguous)
      .def_property_readonly("device", &DLPackView::device);
  py::class_<NumpyOptimizer>(m, "NumpyOptimizer")
      .def(py::init<const py::list&, const rmsprop::Options&>(), py::arg("arrays"),
           py::arg("options"))
      .def("step", &NumpyOptimizer::step, py::arg("grads"))
      .def("save", &NumpyOptimizer::save, py::arg("path"))
      .def("load", &NumpyOptimizer::load, py::arg("path"))
      .def_property_readonly("steps_taken", &NumpyOptimizer::steps_taken)
      .def("options", [](const NumpyOptimizer& o) { return to_dict(o.options()); });
}
