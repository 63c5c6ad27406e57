"""``rmsprop.torch.RMSprop``: a ``torch.optim.Optimizer`` running the fused kernels.

Drop-in for ``torch.optim.RMSprop``: parameter groups, ``add_param_group``, closures,
``zero_grad``, ``maximize``, ``torch.optim.lr_scheduler``, and a ``state_dict`` with the same
per-parameter keys (``step``, ``square_avg``, ``momentum_buffer``, ``grad_avg``), so a run can
switch between the two by loading the other's state dict. Every option and flavor of the C++
core is a keyword argument.

NOTE: [lifetimes] The extension sees tensors as raw pointers. Its step (``_core.TorchStepper``,
NOTE: [torch stepper] in python/src/torch_stepper.cpp) holds a reference to every parameter
and state tensor it points into and re-reads each gradient's pointer every step; the sparse
path holds what it passes in local variables until the extension call returns.
"""
import weakref

import torch

from . import _core
from ._core import InvalidOption
from ._options import OPTION_NAMES, resolve

# Group keys: torch.optim.RMSprop's, plus ours, from the core's option table (docs/api.md);
# torch's own extra keys (foreach, differentiable) are accepted in loaded state dicts and
# ignored: the step is always the one fused kernel. The dtypes: the core's table.
_DTYPES = {getattr(torch, row["name"]): row["name"] for row in _core.dtype_table()}
_KEYS = tuple(key for key in OPTION_NAMES if key != "lr")  # lr: read every step, any type
# torch 2.x keeps each parameter's step count as a scalar tensor (float32, or float64 when that
# is the default dtype); 1.x as an int. Ours follows the installed torch, so state dicts match.
_STEP_TENSOR = int(torch.__version__.split(".")[0]) >= 2
_CUDA = torch.cuda.is_available()  # a capture can only be under way where CUDA is


def _scalar_dtype():
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _group_options(group):
    """The group's validated options (its values may have been changed since the last step:
    a scheduler writes lr, a user any key)."""
    _check_torch_keys(group)
    return resolve(None, dict({key: group.get(key) for key in _KEYS}, lr=_host_lr(group["lr"])))


def _host_lr(lr):
    """A learning rate as a float for the checks (a tensor lr is read once here)."""
    return float(lr) if torch.is_tensor(lr) else lr


# NOTE: [torch keys] torch.optim.RMSprop's group keys beside the options: `foreach` (any value:
# ours is always one multi-tensor call), `capturable` (honoured on CUDA), `differentiable` and
# `fused` (True is refused: the fused kernel is neither differentiable nor torch's fused path).
def _check_torch_keys(group):
    for key in ("differentiable", "fused"):
        if group.get(key):
            raise ValueError(f"{key}={group[key]!r}: rmsprop.torch.RMSprop's step is one fused "
                             f"kernel outside autograd; only {key}=False (or None) is supported")


class RMSprop(torch.optim.Optimizer):
    """RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
    centered=False, capturable=False, foreach=None, maximize=False, differentiable=False, *,
    flavor="torch", threads=0, sparse_mode="dense", **options)

    torch.optim.RMSprop's signature (torch 2.x), then ours. ``foreach`` is accepted and kept
    (the step is always one multi-tensor call); ``differentiable=True`` is refused.
    ``capturable=True`` without ``non_finite`` steps as torch does (``non_finite="propagate"``).

    Arguments left out take the flavor's defaults (torch.optim.RMSprop's for "torch"); any
    argument given overrides the flavor. ``options`` are the other rmsprop options:
    nesterov, bias_correction, eps_in_sqrt, initial_accumulator_value, lr_in_momentum,
    decoupled_weight_decay, weight_decay_uses_lr, grad_avg_decay, algorithm, non_finite,
    state_dtype, master_weights, stochastic_rounding. ``threads`` sets the kernel's thread
    count (0: all cores).

    CUDA tensors step on the GPU with the same kernels' CUDA build, on
    ``torch.cuda.current_stream()``; ``capturable=True`` keeps each parameter's step count and
    the learning rate on the device, so a whole training step can be captured in a CUDA graph
    (``torch.cuda.graph``) with no host synchronisation: there ``non_finite="skip"`` is decided
    on the device ("error" needs a host read each step and is refused with capturable). A
    tensor ``lr`` on the parameters' device is read in place (a schedule may write it).

    Sparse gradients (``torch.sparse`` COO with one sparse dimension, e.g. from
    ``nn.Embedding(sparse=True)``) step the touched rows: ``sparse_mode="dense"`` (default) gives
    the dense step's result with zero rows (every row's state decays); ``"lazy"`` reads and
    writes only the touched rows, each as if those were the only steps it saw (TF1's sparse
    apply; per-row step counts in ``state["row_steps"]``).
    """

    def __init__(self, params, lr=None, alpha=None, eps=None, weight_decay=None, momentum=None,
                 centered=None, capturable=False, foreach=None, maximize=None,
                 differentiable=False, *, flavor=None, threads=0, sparse_mode="dense",
                 **options):
        unknown = set(options) - set(OPTION_NAMES)
        if unknown:
            raise TypeError(f"RMSprop got unknown options {sorted(unknown)}")
        if not isinstance(threads, int) or threads < 0:
            raise ValueError(f"threads={threads!r}: must be an int >= 0")
        self._threads = threads
        self._stepper = _core.TorchStepper(_Callbacks)
        self._group_cache = {}  # group index -> (option values, _core.Options)
        if capturable and options.get("non_finite") is None:
            # as torch steps capturably: nothing read on the host ("error" would need a read)
            options["non_finite"] = "propagate"
        defaults = resolve(flavor, dict(options, lr=_host_lr(lr), alpha=alpha, eps=eps,
                                        weight_decay=weight_decay, momentum=momentum,
                                        centered=centered, maximize=maximize)).to_dict()
        if torch.is_tensor(lr):
            defaults["lr"] = lr  # as torch keeps it: a schedule may write it in place
        if sparse_mode not in ("dense", "lazy"):
            raise ValueError(f"sparse_mode={sparse_mode!r}: 'dense' or 'lazy'")
        defaults["sparse_mode"] = sparse_mode
        if capturable and defaults["non_finite"] == "error":
            raise ValueError("capturable=True with non_finite='error': raising needs a host read "
                             "of every step's gradients; use non_finite='skip' (decided on the "
                             "device) or 'propagate'")
        # torch.optim.RMSprop's multi-tensor keys, kept as torch keeps them (NOTE: [torch keys])
        defaults.update(capturable=bool(capturable), foreach=foreach,
                        differentiable=differentiable)
        _check_torch_keys(defaults)
        self._flags = {}  # device -> int32 non-finite flag tensor
        self._device_lr = {}  # (group index, device) -> float64 lr tensor
        super().__init__(params, defaults)

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        # a group's own options are validated now, not at its first step
        _group_options(self.param_groups[-1])

    def __setstate__(self, state):
        super().__setstate__(state)
        # torch.optim.Optimizer pickles (and deep-copies) defaults, state and groups only: our
        # own attributes come back as fresh caches
        self.__dict__.setdefault("_threads", 0)
        self._stepper = _core.TorchStepper(_Callbacks)
        self._group_cache, self._flags, self._device_lr = {}, {}, {}
        # a state dict from torch.optim.RMSprop lacks our keys: they take our defaults
        for group in self.param_groups:
            for key in OPTION_NAMES:
                group.setdefault(key, self.defaults.get(key))
            group.setdefault("sparse_mode", self.defaults.get("sparse_mode", "dense"))
            group.setdefault("capturable", self.defaults.get("capturable", False))
            group.setdefault("foreach", self.defaults.get("foreach"))
            group.setdefault("differentiable", self.defaults.get("differentiable", False))
            _check_torch_keys(group)
        for p, st in self.state.items():
            # each step count as the installed torch keeps it (a capturable run's device int64
            # tensor, made by _Callbacks.device_step, is kept)
            step = st.get("step")
            if step is None or (torch.is_tensor(step) and step.device.type != "cpu"):
                continue
            if _STEP_TENSOR and not torch.is_tensor(step):
                st["step"] = torch.tensor(float(step), dtype=_scalar_dtype())
            elif not _STEP_TENSOR and torch.is_tensor(step):
                st["step"] = int(step.item())

    def load_state_dict(self, state_dict):
        """torch.optim.Optimizer.load_state_dict casts floating state to each parameter's
        dtype; ours has its own (float32 state and master copy of a 16-bit parameter, int64
        row_steps): every state tensor comes back at the dtype it was saved with, so nothing
        is rounded on the way and the kernels read each buffer at its size (the step then
        checks and converts as for any state)."""
        _check_loaded_state(self.param_groups, state_dict)
        own = {pid: {k: t for k, t in st.items() if k != "step" and torch.is_tensor(t)}
               for pid, st in state_dict["state"].items()}
        super().load_state_dict(state_dict)
        saved = [pid for g in state_dict["param_groups"] for pid in g["params"]]
        params = [p for g in self.param_groups for p in g["params"]]
        for pid, p in zip(saved, params):
            for key, t in own.get(pid, {}).items():
                device = "cpu" if key == "row_steps" else p.device
                # contiguous: the kernels read state as one buffer (torch's may be strided)
                self.state[p][key] = t.to(device=device, copy=True,
                                          memory_format=torch.contiguous_format)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if _CUDA and torch.cuda.is_current_stream_capturing() \
                and not all(g["capturable"] for g in self.param_groups):
            raise RuntimeError("Attempting CUDA graph capture of step() for an instance of "
                               "rmsprop.torch.RMSprop but param_groups' capturable is False")
        for flag in self._flags.values():
            flag.zero_()
        groups, keep = [], []
        for index, group in enumerate(self.param_groups):
            lr, device_lr, skip = group["lr"], 0, 0
            device = _capturable_device(group) if group["capturable"] else None
            if device is not None:
                lr_tensor = self._lr_on(index, group, device)
                keep.append(lr_tensor)
                device_lr, skip = lr_tensor.data_ptr(), self._flag(device).data_ptr()
                lr = 0.0 if torch.is_tensor(lr) else lr  # read on the device
            groups.append((self._options(index, group), float(lr), group["params"], device_lr,
                           skip))
        # every check, every group, before anything changes (NOTE: [torch stepper])
        sparse = self._stepper.prepare(groups, self.state, self._threads)
        rows = [_check_sparse(p, p.grad, self.state.get(p, {}), self.param_groups[gi])
                for gi, pi in sparse for p in [self.param_groups[gi]["params"][pi]]]
        if self._stepper.run():
            for (gi, pi), row_steps in zip(sparse, rows):
                group = self.param_groups[gi]
                p = group["params"][pi]
                if row_steps is not None:
                    self.state[p]["row_steps"] = row_steps
                self._sparse_step(group, groups[gi][0], p, p.grad)
        return loss

    def _options(self, index, group):
        """The group's validated options, resolved again only when a value changed."""
        values = tuple(group.get(key) for key in _KEYS)
        cached = self._group_cache.get(index)
        if cached is None or cached[0] != values:  # checked once, when a value changed
            try:
                cached = values, resolve(None, dict(zip(_KEYS, values)))
            except InvalidOption as e:  # a value written into the group (a scheduler, say)
                raise InvalidOption(f"group {index}: {e}") from None
            self._group_cache[index] = cached
        return cached[1]

    def _flag(self, device):
        if device not in self._flags:
            self._flags[device] = torch.zeros((), dtype=torch.int32, device=device)
        return self._flags[device]

    def _lr_on(self, group_index, group, device):
        """The group's learning rate as a float64 tensor on `device`: a tensor lr already
        there is read in place; a float is written into a cached tensor (a captured graph
        replays the value it had at capture)."""
        lr = group["lr"]
        if torch.is_tensor(lr) and lr.device == device and lr.dtype == torch.float64 \
                and lr.numel() == 1:
            return lr
        cached = self._device_lr.get((group_index, device))
        if cached is None:
            cached = torch.empty((), dtype=torch.float64, device=device)
            self._device_lr[(group_index, device)] = cached
        if torch.is_tensor(lr):
            cached.copy_(lr.reshape(()))
        else:
            cached.fill_(float(lr))
        return cached

    def _sparse_step(self, group, options, p, grad):
        """One step of a parameter with a COO row gradient, checked by _check_sparse; the
        planner has made its state and counted the step."""
        state = self.state[p]
        mode = group["sparse_mode"]
        indices = grad._indices()[0].contiguous()
        values = grad._values().contiguous()
        half = p.dtype in (torch.bfloat16, torch.float16)
        buffers = (p,) + tuple(state.get(name) for name in _BUFFERS[:3]) + (
            state.get("master_weights") if group["master_weights"] and half else None,)
        ptr = lambda t: 0 if t is None else t.data_ptr()  # noqa: E731
        row_steps = state.get("row_steps") if mode == "lazy" else None
        _core.sparse_step(options, float(group["lr"]), _DTYPES[p.dtype], p.shape[0],
                          p.numel() // p.shape[0], tuple(ptr(t) for t in buffers),
                          indices.data_ptr(), indices.numel(), values.data_ptr(), mode,
                          int(state["step"]), ptr(row_steps), self._threads)
        del buffers, indices, values, row_steps  # alive until here: NOTE: [lifetimes]


_BUFFERS = ("square_avg", "grad_avg", "momentum_buffer", "master_weights")


def _check_loaded_state(param_groups, state_dict):
    """Every value of a state dict checked against its parameter before anything is loaded
    (torch.optim.Optimizer.load_state_dict takes any tensor, reshaping or casting it): a step
    count 0 to 2^53, state buffers of the parameter's shape and a dtype the kernels read
    (8-bit state: its byte count), row_steps one non-negative int per row. Raises ValueError
    naming the parameter, the key and the value."""
    groups = state_dict.get("param_groups")
    if not isinstance(groups, (list, tuple)) or "state" not in state_dict:
        raise ValueError("load_state_dict: a state dict has 'state' and 'param_groups'")
    saved = [pid for g in groups for pid in g.get("params", ())]
    params = [p for g in param_groups for p in g["params"]]
    if len(saved) != len(params):
        return  # torch's own check names the mismatch
    index = {pid: (i, p) for i, (pid, p) in enumerate(zip(saved, params))}
    for pid, st in state_dict["state"].items():
        if pid not in index:
            continue
        i, p = index[pid]
        for key, value in st.items():
            problem = _loaded_value_problem(p, key, value)
            if problem:
                raise ValueError(f"load_state_dict: parameter {i}'s state {key!r} {problem}")


def _loaded_value_problem(p, key, value):
    """Why `value` cannot be state `key` of parameter `p`, or None."""
    if key == "step":
        if torch.is_tensor(value):
            if value.numel() != 1 or value.is_complex() or value.dtype == torch.bool:
                return f"is a {value.dtype} tensor of shape {tuple(value.shape)}, not a count"
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"is {value!r}, not a count"
        if not (0 <= value <= _core.MAX_STEP_COUNT) or value != int(value):
            return f"is {value!r}: a step count is a whole number 0 to 2^53"
        return None
    if key not in _BUFFERS and key != "row_steps":
        return None  # not ours to read (torch keeps unknown keys as they are)
    if not torch.is_tensor(value):
        return f"is a {type(value).__name__}, not a tensor"
    if key == "row_steps":
        if value.dtype not in (torch.int64, torch.int32) or tuple(value.shape) != (p.shape[0],):
            return (f"is {value.dtype} of shape {tuple(value.shape)}: expected one int64 per "
                    f"row, shape ({p.shape[0]},)")
        return None
    if value.dtype == torch.uint8 and key != "master_weights":  # 8-bit state: codes and scales
        expected = _core.state8_bytes(p.numel())
        if value.dim() != 1 or value.numel() != expected:
            return (f"is 8-bit state of shape {tuple(value.shape)}: a parameter of "
                    f"{p.numel()} values keeps {expected} bytes")
        return None
    dtypes = ((torch.complex64, torch.complex128) if p.is_complex() else
              (torch.float32,) if key == "master_weights" else tuple(_DTYPES))
    if value.dtype not in dtypes:
        return (f"has dtype {value.dtype}: expected "
                f"{', '.join(str(d).replace('torch.', '') for d in dtypes)}")
    if value.shape != p.shape:
        return f"has shape {tuple(value.shape)}, the parameter {tuple(p.shape)}"
    return None


def _capturable_device(group):
    """The device a capturable group steps on: its first parameter's with a gradient."""
    for p in group["params"]:
        if p.grad is not None:
            return p.device if p.is_cuda else None
    return None


def _check_sparse(p, grad, state, group):
    if p.device.type != "cpu" or grad.device.type != "cpu":
        raise RuntimeError(f"rmsprop.torch.RMSprop runs on CPU tensors; got a parameter on "
                           f"{p.device} with its gradient on {grad.device}")
    if p.dtype not in _DTYPES or grad.dtype != p.dtype:
        raise TypeError(f"rmsprop.torch.RMSprop: sparse gradient of dtype {grad.dtype} for a "
                        f"{p.dtype} parameter (float32, float64, bfloat16, float16, the same)")
    if p.dim() < 1 or grad.shape != p.shape or grad.sparse_dim() != 1 \
            or not p.is_contiguous():
        raise RuntimeError("rmsprop.torch.RMSprop: sparse gradients must be row gradients (one "
                           f"sparse dimension) of a contiguous parameter; got sparse_dim "
                           f"{grad.sparse_dim()} of shape {tuple(grad.shape)} for a parameter of "
                           f"shape {tuple(p.shape)}")
    if group["sparse_mode"] == "lazy":
        # per-row step counts: a CPU int64 per row (a loaded one is brought to that form)
        rows = state.get("row_steps")
        if rows is None:
            rows = torch.zeros(p.shape[0], dtype=torch.int64)
        elif rows.dtype != torch.int64 or rows.device.type != "cpu" or not rows.is_contiguous():
            rows = rows.to("cpu", torch.int64).contiguous()
        if rows.shape != (p.shape[0],):
            raise ValueError(f"rmsprop.torch.RMSprop: state 'row_steps' has shape "
                             f"{tuple(rows.shape)}, expected ({p.shape[0]},)")
        if bool((rows < 0).any()):
            raise ValueError("rmsprop.torch.RMSprop: state 'row_steps' holds negative counts")
        return rows
    return None


class _Callbacks:
    """What _core.TorchStepper asks of torch (NOTE: [torch stepper]): it includes no torch
    header, so tensors are described, and state is made, here."""

    @staticmethod
    def describe(t):
        return (t.data_ptr(), t.numel(), _DTYPES.get(t.dtype, str(t.dtype)), t.device.type,
                t.device.index or 0, t.is_contiguous())

    @staticmethod
    def describe_grad(g):
        """A dense gradient as it is, or a contiguous copy of a strided one (read only); a sparse
        one's values (what the non-finite policy reads; _sparse_step steps it)."""
        if g.is_sparse:
            values = g._values().contiguous()
            return _Callbacks.describe(values), True, values
        if not g.is_contiguous():
            copy = g.contiguous()
            return _Callbacks.describe(copy), False, copy
        return _Callbacks.describe(g), False, None

    @staticmethod
    def stage(p):
        """A contiguous stand-in for a strided parameter (a view, a slice, a transpose): the
        step runs on it, the parameter's values copied in before and out after."""
        return torch.empty_like(p, memory_format=torch.contiguous_format)

    @staticmethod
    def copy(dst, src):
        dst.copy_(src)

    @staticmethod
    def state_of(state, p):
        """(p's state dict, whether it is in `state`): a new one joins only when p steps
        (adopt), so a refused first step leaves the optimizer's state as it was."""
        return (state[p], True) if p in state else ({}, False)

    @staticmethod
    def adopt(state, p, own):
        """A parameter's first step: its state joins the optimizer's, with its step count as
        the installed torch keeps it (2.x: a scalar tensor, 1.x: an int)."""
        if _STEP_TENSOR and "step" not in own:
            own["step"] = torch.tensor(0.0, dtype=_scalar_dtype())
        state[p] = own

    @staticmethod
    def host_step(t):
        """(pointer, dtype) of a step count kept in a host scalar tensor, else None."""
        if torch.is_tensor(t) and t.device.type == "cpu" and t.numel() == 1 \
                and t.dtype in (torch.float32, torch.float64, torch.int64) and t.is_contiguous():
            return t.data_ptr(), str(t.dtype).replace("torch.", "")
        return None

    @staticmethod
    def allocate(p, state, key, dtype, init, value):
        """A state tensor as the planner asks for it: filled with `value`, a float32 copy of
        the parameter, the present one converted to `dtype`, or (init "empty", for 8-bit
        state made or converted from, which the core fills) an empty one of `value` bytes;
        8-bit state ("int8_block") is a uint8 tensor of its codes and block scales."""
        if p.is_complex():  # complex state, stepped as its real view as the parameter is
            dtype = {"float32": torch.complex64, "float64": torch.complex128}[dtype]
            if init == "value":
                t = torch.empty_like(p, dtype=dtype, memory_format=torch.contiguous_format)
                torch.view_as_real(t).fill_(value)
            else:
                t = state[key].to(dtype=dtype, memory_format=torch.contiguous_format, copy=True)
            state[key] = t
            return t
        if init == "empty":
            if dtype == "int8_block":
                t = torch.empty(int(value), dtype=torch.uint8, device=p.device)
            else:
                t = torch.empty_like(p, dtype=getattr(torch, dtype),
                                     memory_format=torch.contiguous_format)
            state[key] = t
            return t
        dtype = getattr(torch, dtype)
        if init == "value":
            t = torch.full_like(p, value, dtype=dtype, memory_format=torch.contiguous_format)
        elif init == "from_param":
            t = p.detach().to(dtype=dtype, memory_format=torch.contiguous_format, copy=True)
        else:
            t = state[key].to(dtype=dtype, memory_format=torch.contiguous_format, copy=True)
        state[key] = t
        return t

    @staticmethod
    def device_step(p, state):
        """A capturable parameter's step count as a device int64 tensor (from an int)."""
        step = state.get("step", 0)
        if not torch.is_tensor(step) or step.device != p.device or step.dtype != torch.int64:
            step = torch.tensor(int(step), dtype=torch.int64, device=p.device)
            state["step"] = step
        return step

    @staticmethod
    def launch(index, body):
        """Runs body(stream) with CUDA device `index` current, on its current stream."""
        with torch.cuda.device(index):
            body(torch.cuda.current_stream(index).cuda_stream)
