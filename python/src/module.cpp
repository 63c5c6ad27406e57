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
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "rmsprop/cuda.hpp"
#include "rmsprop/error.hpp"
#include "rmsprop/kernel.hpp"
#include "rmsprop/optimizer.hpp"
#include "rmsprop/sparse.hpp"

namespace py = pybind11;

namespace {

rmsprop::DType dtype_from(const std::string& name) {
  if (name == "float32") return rmsprop::DType::f32;
  if (name == "float64") return rmsprop::DType::f64;
  if (name == "bfloat16") return rmsprop::DType::bf16;
  if (name == "float16") return rmsprop::DType::f16;
  throw rmsprop::InvalidArgument("unsupported dtype '" + name +
                                 "' (float32, float64, bfloat16, float16)");
}

// NOTE: [typed options] Python passes options as Python values (float, bool, str, None),
// converted once by the option table's kinds into a validated rmsprop::Options that Python
// keeps per parameter group: no text travels per step. A str is read as the CLI reads text.
py::object to_python(const rmsprop::OptionValue& value) {
  if (const double* x = std::get_if<double>(&value)) return py::float_(*x);
  if (const bool* b = std::get_if<bool>(&value)) return py::bool_(*b);
  if (const std::string* text = std::get_if<std::string>(&value)) return py::str(*text);
  return py::none();
}

rmsprop::OptionValue from_python(const rmsprop::OptionInfo& info, py::handle value) {
  using rmsprop::OptionKind;
  auto refuse = [&](const char* expected) {
    return rmsprop::InvalidOption("invalid value for " + std::string(info.name) + ": expected " +
                                  expected + ", got " + std::string(py::repr(value)));
  };
  if (py::isinstance<py::str>(value)) return info.parse(value.cast<std::string>());
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

// (param, grad, square_avg, grad_avg, momentum_buffer, master, numel, step) per tensor;
// pointers as integers, 0 for absent buffers.
using Task = std::tuple<std::uintptr_t, std::uintptr_t, std::uintptr_t, std::uintptr_t,
                        std::uintptr_t, std::uintptr_t, std::size_t, std::int64_t>;

std::vector<rmsprop::TensorTask> tasks_of(const rmsprop::Options& options, double lr,
                                          const std::vector<Task>& tasks, std::uint32_t seed) {
  std::vector<rmsprop::TensorTask> list;
  for (const Task& t : tasks) {
    rmsprop::TensorTask task;
    task.param = reinterpret_cast<void*>(std::get<0>(t));
    task.grad = reinterpret_cast<const void*>(std::get<1>(t));
    task.square_avg = reinterpret_cast<void*>(std::get<2>(t));
    task.grad_avg = reinterpret_cast<void*>(std::get<3>(t));
    task.momentum_buffer = reinterpret_cast<void*>(std::get<4>(t));
    task.master = reinterpret_cast<float*>(std::get<5>(t));
    task.size = std::get<6>(t);
    task.coefficients = rmsprop::coefficients(options, std::get<7>(t), lr);
    task.rounding_seed = seed + std::uint32_t(list.size()) * 0x9E3779B9u;
    list.push_back(task);
  }
  return list;
}

// One fused multi-tensor step for tensors of one dtype sharing one group's options, on the
// CPU, or with `stream` (a cudaStream_t as an integer) on the current CUDA device; `skip`: a
// device int32 that, nonzero, makes the CUDA step a no-op.
void step(const rmsprop::Options& options, double lr, const std::vector<Task>& tasks,
          const std::string& dtype, int threads, std::uint32_t seed,
          std::optional<std::uintptr_t> stream, std::uintptr_t skip) {
  const rmsprop::Precision precision = rmsprop::precision_for(dtype_from(dtype), options);
  const std::vector<rmsprop::TensorTask> list = tasks_of(options, lr, tasks, seed);
  const rmsprop::Variant variant = rmsprop::variant_of(options);
  py::gil_scoped_release release;
  if (stream) {
    rmsprop::cuda::fused_step(variant, precision, list, reinterpret_cast<void*>(*stream),
                              reinterpret_cast<const std::int32_t*>(skip));
  } else {
    rmsprop::fused_step(variant, precision, list, {threads, {}});
  }
}

// A capturable CUDA step: step counters (device int64, one per task), lr (device float64) and
// skip flag (device int32 or 0) in device memory; nothing is read on the host.
void capturable_step(const rmsprop::Options& options, const std::vector<Task>& tasks,
                     const std::string& dtype, std::uint32_t seed,
                     const std::vector<std::uintptr_t>& steps, std::uintptr_t lr,
                     std::uintptr_t skip, std::uintptr_t stream) {
  const rmsprop::Precision precision = rmsprop::precision_for(dtype_from(dtype), options);
  const std::vector<rmsprop::TensorTask> list = tasks_of(options, 0.0, tasks, seed);
  std::vector<std::int64_t*> counters;
  for (std::uintptr_t s : steps) counters.push_back(reinterpret_cast<std::int64_t*>(s));
  py::gil_scoped_release release;
  rmsprop::cuda::capturable_step(
      options, precision, list, counters,
      {reinterpret_cast<const double*>(lr), reinterpret_cast<const std::int32_t*>(skip)},
      reinterpret_cast<void*>(stream));
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

  static rmsprop::DType dtype_of(const py::array& a) {
    return a.dtype().equal(py::dtype::of<float>()) ? rmsprop::DType::f32 : rmsprop::DType::f64;
  }
  static py::array checked(py::handle object, const char* what, std::size_t i) {
    if (!py::isinstance<py::array>(object)) {
      throw rmsprop::InvalidArgument(std::string(what) + " " + std::to_string(i) +
                                     " is not a NumPy array");
    }
    py::array a = py::reinterpret_borrow<py::array>(object);
    if (!a.dtype().equal(py::dtype::of<float>()) && !a.dtype().equal(py::dtype::of<double>())) {
      throw rmsprop::InvalidArgument(std::string(what) + " " + std::to_string(i) + " has dtype " +
                                     std::string(py::str(a.dtype())) +
                                     "; NumPy arrays must be float32 or float64");
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
    if (t.dtype.lanes == 1 && t.dtype.code == 2 && t.dtype.bits == 32) dtype_ = "float32";
    if (t.dtype.lanes == 1 && t.dtype.code == 2 && t.dtype.bits == 64) dtype_ = "float64";
    if (t.dtype.lanes == 1 && t.dtype.code == 2 && t.dtype.bits == 16) dtype_ = "float16";
    if (t.dtype.lanes == 1 && t.dtype.code == 4 && t.dtype.bits == 16) dtype_ = "bfloat16";
    if (dtype_.empty()) {
      dtype_ = "dlpack(code=" + std::to_string(t.dtype.code) +
               ", bits=" + std::to_string(t.dtype.bits) +
               ", lanes=" + std::to_string(t.dtype.lanes) + ")";
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

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "rmsprop's fused kernels and C++ optimizer (no torch dependency)";
  py::register_exception<rmsprop::InvalidOption>(m, "InvalidOption", PyExc_ValueError);
  py::register_exception<rmsprop::InvalidArgument>(m, "InvalidArgument", PyExc_ValueError);
  py::register_exception<rmsprop::NonFiniteError>(m, "NonFiniteError", PyExc_FloatingPointError);
  py::register_exception<rmsprop::CheckpointError>(m, "CheckpointError", PyExc_OSError);
  py::register_exception<rmsprop::cuda::NotBuiltWithCuda>(m, "NotBuiltWithCuda",
                                                          PyExc_RuntimeError);
  py::register_exception<rmsprop::cuda::CudaError>(m, "CudaError", PyExc_RuntimeError);
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
  m.def("step", &step, py::arg("options"), py::arg("lr"), py::arg("tasks"), py::arg("dtype"),
        py::arg("threads") = 0, py::arg("seed") = 0, py::arg("stream") = py::none(),
        py::arg("skip") = 0);
  m.def("capturable_step", &capturable_step, py::arg("options"), py::arg("tasks"), py::arg("dtype"),
        py::arg("seed"), py::arg("steps"), py::arg("lr"), py::arg("skip"), py::arg("stream"));
  m.def("cuda_built", &rmsprop::cuda::built);
  m.def("cuda_device_count", &rmsprop::cuda::device_count);
  m.def("cuda_device_problem", &rmsprop::cuda::device_problem);
  m.def(
      "cuda_flag_non_finite",
      [](const std::vector<std::tuple<std::uintptr_t, std::size_t, std::string>>& list,
         std::uintptr_t flag, std::uintptr_t stream) {
        std::vector<rmsprop::ConstBuffer> buffers;
        for (const auto& [data, size, dtype] : list) {
          buffers.push_back({reinterpret_cast<const void*>(data), dtype_from(dtype), size});
        }
        py::gil_scoped_release release;
        rmsprop::cuda::flag_non_finite(buffers, reinterpret_cast<std::int32_t*>(flag),
                                       reinterpret_cast<void*>(stream));
      },
      py::arg("buffers"), py::arg("flag"), py::arg("stream"),
      "sets the device int32 *flag to 1 when a buffer holds NaN or inf (queued on stream)");
  m.def("sparse_step", &sparse_step, py::arg("options"), py::arg("lr"), py::arg("dtype"),
        py::arg("rows"), py::arg("row_size"), py::arg("buffers"), py::arg("indices"),
        py::arg("nnz"), py::arg("values"), py::arg("mode"), py::arg("step"), py::arg("row_steps"),
        py::arg("threads") = 0);
  m.def(
      "find_non_finite_in",
      [](const std::vector<std::tuple<std::uintptr_t, std::size_t, std::string>>& list,
         int threads) {
        std::vector<rmsprop::ConstBuffer> buffers;
        for (const auto& [data, size, dtype] : list) {
          buffers.push_back({reinterpret_cast<const void*>(data), dtype_from(dtype), size});
        }
        py::gil_scoped_release release;
        return rmsprop::find_non_finite(buffers, threads);
      },
      py::arg("buffers"), py::arg("threads") = 0,
      "(index in the list, element) of the first non-finite value, or None");
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
