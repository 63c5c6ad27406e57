"""``rmsprop.torch.RMSprop``: a ``torch.optim.Optimizer`` running the fused kernels.

Drop-in for ``torch.optim.RMSprop``: parameter groups, ``add_param_group``, closures,
``zero_grad``, ``maximize``, ``torch.optim.lr_scheduler``, and a ``state_dict`` with the same
per-parameter keys (``step``, ``square_avg``, ``momentum_buffer``, ``grad_avg``), so a run can
switch between the two by loading the other's state dict. Every option and flavor of the C++
core is a keyword argument.

NOTE: [lifetimes] The extension sees tensors as raw pointers. ``step`` holds a reference to
every tensor whose pointer it passes (parameters, gradients, state) in local lists until the
extension call returns, and the extension does not keep pointers after it returns.
"""
import weakref

import torch

from . import _core
from ._options import OPTION_NAMES, resolve

# Group keys: torch.optim.RMSprop's, plus ours, from the core's option table (docs/api.md);
# torch's own extra keys (foreach, differentiable) are accepted in loaded state dicts and
# ignored: the step is always the one fused kernel.
_DTYPES = {torch.float32: "float32", torch.float64: "float64", torch.bfloat16: "bfloat16",
           torch.float16: "float16"}


def _group_options(group):
    """The group's validated options (its values may have been changed since the last step:
    a scheduler writes lr, a user any key)."""
    return resolve(None, {key: group.get(key) for key in OPTION_NAMES})


class RMSprop(torch.optim.Optimizer):
    """RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
    centered=False, *, maximize=False, flavor="torch", **options)

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
                 centered=None, *, maximize=None, flavor=None, threads=0, sparse_mode="dense",
                 capturable=False, **options):
        unknown = set(options) - set(OPTION_NAMES)
        if unknown:
            raise TypeError(f"RMSprop got unknown options {sorted(unknown)}")
        if not isinstance(threads, int) or threads < 0:
            raise ValueError(f"threads={threads!r}: must be an int >= 0")
        self._threads = threads
        self._tasks = {}  # id(parameter) -> _Task; see NOTE: [task cache]
        defaults = resolve(flavor, dict(options, lr=lr, alpha=alpha, eps=eps,
                                        weight_decay=weight_decay, momentum=momentum,
                                        centered=centered, maximize=maximize)).to_dict()
        if sparse_mode not in ("dense", "lazy"):
            raise ValueError(f"sparse_mode={sparse_mode!r}: 'dense' or 'lazy'")
        defaults["sparse_mode"] = sparse_mode
        if capturable and defaults["non_finite"] == "error":
            raise ValueError("capturable=True with non_finite='error': raising needs a host read "
                             "of every step's gradients; use non_finite='skip' (decided on the "
                             "device) or 'propagate'")
        defaults["capturable"] = bool(capturable)
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
        self._tasks, self._flags, self._device_lr = {}, {}, {}
        # a state dict from torch.optim.RMSprop lacks our keys: they take our defaults
        for group in self.param_groups:
            for key in OPTION_NAMES:
                group.setdefault(key, self.defaults.get(key))
            group.setdefault("sparse_mode", self.defaults.get("sparse_mode", "dense"))
            group.setdefault("capturable", self.defaults.get("capturable", False))
        for p, st in self.state.items():
            # torch 2.x keeps step as a tensor; ours is an int, or with capturable a device
            # int64 tensor (made by _ensure_state)
            if "step" in st and torch.is_tensor(st["step"]) and st["step"].device.type == "cpu":
                st["step"] = int(st["step"].item())

    def load_state_dict(self, state_dict):
        """torch.optim.Optimizer.load_state_dict casts floating state to each parameter's
        dtype; ours has its own (float32 state and master copy of a 16-bit parameter, int64
        row_steps): every state tensor comes back at the dtype it was saved with, so nothing
        is rounded on the way and the kernels read each buffer at its size (the step then
        checks and converts as for any state)."""
        own = {pid: {k: t for k, t in st.items() if k != "step" and torch.is_tensor(t)}
               for pid, st in state_dict["state"].items()}
        super().load_state_dict(state_dict)
        saved = [pid for g in state_dict["param_groups"] for pid in g["params"]]
        params = [p for g in self.param_groups for p in g["params"]]
        for pid, p in zip(saved, params):
            for key, t in own.get(pid, {}).items():
                device = "cpu" if key == "row_steps" else p.device
                self.state[p][key] = t.to(device=device, copy=True)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if not self._gradients_allow_step():
            return loss
        for index, group in enumerate(self.param_groups):
            self._step_group(index, group)
        return loss

    def _gradients_allow_step(self):
        """The non_finite policy, before anything changes: "error" raises FloatingPointError
        naming the element, "skip" skips the step for every group, "propagate" steps. One
        extension call scans every CPU gradient of a group; CUDA gradients are scanned on
        their device into a flag, read here unless capturable (then the kernels read it)."""
        skip = False
        for flag in self._flags.values():
            flag.zero_()
        for gi, group in enumerate(self.param_groups):
            if group["non_finite"] == "propagate":
                continue
            grads = [(pi, _scanned_values(p.grad)) for pi, p in enumerate(group["params"])
                     if p.grad is not None]
            scanned = [(pi, g) for pi, g in grads if _scannable(g)]
            hit = _core.find_non_finite_in(
                [(g.data_ptr(), g.numel(), _DTYPES[g.dtype]) for _, g in scanned], self._threads)
            if hit is None:
                hit = self._find_non_finite_on_devices(group, grads)
            else:
                hit = scanned[hit[0]], hit[1]
            if hit is None:
                continue
            if group["non_finite"] == "skip":
                skip = True
                continue
            (pi, g), at = hit
            raise _core.NonFiniteError(
                f"non-finite gradient in group {gi}, parameter {pi} at element {at}: "
                f"{g.reshape(-1)[at].item()} (policy non_finite=error: nothing was changed)")
        return not skip

    def _find_non_finite_on_devices(self, group, grads):
        """Flags non-finite CUDA gradients on their devices. Capturable groups leave the
        flags to the kernels (None here); others read them: ((index, gradient), element)."""
        by_device = {}
        for pi, g in grads:
            if g.is_cuda and g.dtype in _DTYPES and g.is_contiguous():
                by_device.setdefault(g.device, []).append((pi, g))
        for device, items in by_device.items():
            flag = self._flag(device)
            with torch.cuda.device(device):
                _core.cuda_flag_non_finite(
                    [(g.data_ptr(), g.numel(), _DTYPES[g.dtype]) for _, g in items],
                    flag.data_ptr(), torch.cuda.current_stream(device).cuda_stream)
            if group["capturable"]:
                continue
            if flag.item() != 0:
                for pi, g in items:
                    bad = torch.nonzero(~torch.isfinite(g.reshape(-1)))
                    if bad.numel() > 0:
                        return (pi, g), int(bad[0, 0].item())
        return None

    def _flag(self, device):
        if device not in self._flags:
            self._flags[device] = torch.zeros((), dtype=torch.int32, device=device)
        return self._flags[device]

    def _step_group(self, group_index, group):
        options = _group_options(group)
        need = options.buffers_needed()
        by_kind = {}  # (device, dtype) -> tasks
        keep = []  # see NOTE: [lifetimes]
        capturable = group["capturable"]
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            if grad.is_sparse:
                keep.append(self._sparse_step(group, options, need, p, grad))
                continue
            state = self.state[p]
            entry = self._tasks.get(id(p))
            # NOTE: [task cache] A parameter's task (pointers, dtype) is rebuilt only when
            # something it was built from changed: the gradient object or its storage, the
            # parameter's storage, a state tensor (load_state_dict replaces them), the
            # variant's buffers. Checking identities costs far less than rebuilding, which is
            # what a 4096-tensor model pays per step.
            if entry is None or entry.stale(p, grad, state, need, group):
                entry = _Task(p, grad, state, need, group)
                self._tasks[id(p)] = entry
            keep.append(entry)
            if p.is_cuda and capturable:
                _device_step(state, p.device)
                by_kind.setdefault((p.device, entry.dtype), []).append(
                    (entry.prefix + (0,), state["step"]))
                continue
            if torch.is_tensor(state["step"]):  # a capturable run's state, stepped eagerly
                state["step"] = int(state["step"].item())
            state["step"] += 1
            by_kind.setdefault((p.device, entry.dtype), []).append(
                (entry.prefix + (state["step"],), None))
        for (device, dtype), items in by_kind.items():
            tasks = [task for task, _ in items]
            if device.type == "cpu":
                seed = (group_index * 0x9E3779B9 + tasks[0][7] * 0x85EBCA6B) & 0xFFFFFFFF
                _core.step(options, float(group["lr"]), tasks, dtype, self._threads, seed)
                continue
            stream = torch.cuda.current_stream(device).cuda_stream
            with torch.cuda.device(device):
                if capturable:
                    skip = self._flag(device).data_ptr() if group["non_finite"] == "skip" else 0
                    lr = self._lr_on(group_index, group, device)
                    keep.append(lr)
                    _core.capturable_step(options, tasks, dtype, group_index * 0x9E3779B9,
                                          [step.data_ptr() for _, step in items],
                                          lr.data_ptr(), skip, stream)
                else:
                    seed = (group_index * 0x9E3779B9 + tasks[0][7] * 0x85EBCA6B) & 0xFFFFFFFF
                    _core.step(options, float(group["lr"]), tasks, dtype, self._threads, seed,
                               stream=stream)
        del keep

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

    def _sparse_step(self, group, options, need, p, grad):
        """One step of a parameter with a COO row gradient; returns what the call read (kept
        alive until it returns: NOTE: [lifetimes])."""
        _check_sparse(p, grad)
        state = self.state[p]
        _ensure_state(p, state, need, group)
        mode = group["sparse_mode"]
        if mode == "lazy" and "row_steps" not in state:
            state["row_steps"] = torch.zeros(p.shape[0], dtype=torch.int64)
        if mode == "lazy":
            rows = state["row_steps"]
            if rows.dtype != torch.int64 or rows.device.type != "cpu" \
                    or not rows.is_contiguous():
                rows = state["row_steps"] = rows.to("cpu", torch.int64).contiguous()
            if rows.shape != (p.shape[0],):
                raise ValueError(f"rmsprop.torch.RMSprop: state 'row_steps' has shape "
                                 f"{tuple(rows.shape)}, expected ({p.shape[0]},)")
        state["step"] += 1
        indices = grad._indices()[0].contiguous()
        values = grad._values().contiguous()
        buffers = (p,) + tuple(state.get(name) for name in _BUFFERS)
        ptr = lambda t: 0 if t is None else t.data_ptr()  # noqa: E731
        row_steps = state.get("row_steps") if mode == "lazy" else None
        _core.sparse_step(options, float(group["lr"]), _DTYPES[p.dtype], p.shape[0],
                          p.numel() // p.shape[0], tuple(ptr(t) for t in buffers),
                          indices.data_ptr(), indices.numel(), values.data_ptr(), mode,
                          state["step"], ptr(row_steps), self._threads)
        return buffers, indices, values, row_steps


_BUFFERS = ("square_avg", "grad_avg", "momentum_buffer", "master_weights")



def _device_step(state, device):
    """A capturable parameter's step count: a device int64 tensor (from an int when loaded)."""
    step = state["step"]
    if not torch.is_tensor(step) or step.device != device or step.dtype != torch.int64:
        state["step"] = torch.tensor(int(step), dtype=torch.int64, device=device)


def _scanned_values(g):
    """What the non-finite check reads: a dense gradient, or a sparse one's values."""
    return g._values() if g.is_sparse else g


def _check_sparse(p, grad):
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


class _Task:
    """One parameter's validated kernel task, and what it was built from (weakly: the cache
    must not keep a gradient alive after zero_grad(set_to_none=True))."""

    def __init__(self, p, grad, state, need, group):
        _check(p, grad)
        _ensure_state(p, state, need, group)
        self.param = weakref.ref(p)  # ids are reused once a tensor dies
        self.grad = weakref.ref(grad)
        self.need = need
        self.state_dtype = group["state_dtype"]
        self.master = group["master_weights"]
        self.tensors = tuple(state.get(name) for name in _BUFFERS)
        self.dtype = _DTYPES[p.dtype]
        ptr = lambda t: 0 if t is None else t.data_ptr()  # noqa: E731
        self.prefix = (p.data_ptr(), grad.data_ptr()) + tuple(ptr(t) for t in self.tensors) + \
            (p.numel(),)

    def stale(self, p, grad, state, need, group):
        return (self.param() is not p or self.grad() is not grad
                or grad.data_ptr() != self.prefix[1]
                or p.data_ptr() != self.prefix[0] or need != self.need
                or group["state_dtype"] != self.state_dtype
                or group["master_weights"] != self.master
                or any(state.get(name) is not t for name, t in zip(_BUFFERS, self.tensors)))


def _ensure_state(p, state, need, group):
    """Creates the state this step's variant needs, as torch.optim.RMSprop would, and brings
    loaded state to the kernel's dtype and layout."""
    need_sq, need_avg, need_mom = need
    state_dtype = _state_dtype(p, group)
    if len(state) == 0:
        state["step"] = 0
    like = dict(dtype=state_dtype, memory_format=torch.contiguous_format)
    if need_sq and "square_avg" not in state:
        state["square_avg"] = torch.full_like(p, float(group["initial_accumulator_value"]), **like)
    if need_mom and "momentum_buffer" not in state:
        state["momentum_buffer"] = torch.zeros_like(p, **like)
    if need_avg and "grad_avg" not in state:
        state["grad_avg"] = torch.zeros_like(p, **like)
    half = p.dtype in (torch.bfloat16, torch.float16)
    if group["master_weights"] and half and "master_weights" not in state:
        state["master_weights"] = p.detach().to(torch.float32)
    if not (group["master_weights"] and half):
        state.pop("master_weights", None)
    else:
        _buffer(state, "master_weights", p, torch.float32)
    for name in ("square_avg", "grad_avg", "momentum_buffer"):
        _buffer(state, name, p, state_dtype)


def _scannable(g):
    """What the CPU scan reads (CUDA gradients are scanned on their device)."""
    return not g.is_sparse and g.is_contiguous() and g.dtype in _DTYPES and g.device.type == "cpu"


def _state_dtype(p, group):
    if p.dtype == torch.float64:
        return torch.float64
    return torch.bfloat16 if group["state_dtype"] == "bfloat16" else torch.float32


def _buffer(state, name, p, state_dtype):
    """A state tensor ready for the kernel: loaded state dicts may bring another dtype or
    layout (torch.optim.RMSprop keeps bfloat16 state for bfloat16 parameters)."""
    t = state.get(name)
    if t is None:
        return None
    if t.numel() != p.numel():
        raise ValueError(f"rmsprop.torch.RMSprop: state {name!r} has {t.numel()} elements "
                         f"for a parameter of shape {tuple(p.shape)}")
    if t.dtype != state_dtype or not t.is_contiguous() or t.device != p.device \
            or t.shape != p.shape:
        t = t.to(device=p.device, dtype=state_dtype).contiguous().reshape(p.shape)
        state[name] = t
    return t


def _check(p, grad):
    if p.device != grad.device or p.device.type not in ("cpu", "cuda"):
        raise RuntimeError(f"rmsprop.torch.RMSprop: a parameter on {p.device} has its gradient "
                           f"on {grad.device}: both must be on the CPU or on one CUDA device")
    if p.is_cuda and not _core.cuda_built():
        raise RuntimeError(f"rmsprop.torch.RMSprop: a parameter is on {p.device} but this "
                           "rmsprop was built without its CUDA backend (build with nvcc)")
    if p.dtype not in _DTYPES:
        raise TypeError(f"rmsprop.torch.RMSprop: unsupported dtype {p.dtype} "
                        "(float32, float64, bfloat16, float16)")
    if grad.dtype != p.dtype:
        raise TypeError(f"rmsprop.torch.RMSprop: gradient dtype {grad.dtype} differs from its "
                        f"parameter's {p.dtype}")
    if not p.is_contiguous() or not grad.is_contiguous():
        which = "parameter" if not p.is_contiguous() else "gradient"
        raise RuntimeError(f"rmsprop.torch.RMSprop: the {which} of shape {tuple(p.shape)} is "
                           "not contiguous; make it contiguous before optimizing it")
