"""``rmsprop.step``: one fused step over any arrays that speak DLPack (NumPy, CuPy, JAX, torch),
updated in place, on the CPU or on a CUDA device with the DLPack stream protocol."""
from . import _core
from ._options import resolve

_STATE_NAMES = ("square_avg", "grad_avg", "momentum_buffer")


def state_buffers(flavor=None, **options):
    """The state buffers ``step`` needs under these options, by name, in order."""
    need = resolve(flavor, options).buffers_needed()
    return tuple(name for name, used in zip(_STATE_NAMES, need) if used)


def _view(array, what, stream):
    if not hasattr(array, "__dlpack__") or not hasattr(array, "__dlpack_device__"):
        raise TypeError(f"{what} ({type(array).__name__}) does not speak DLPack "
                        "(__dlpack__ and __dlpack_device__)")
    device_type, _ = array.__dlpack_device__()
    # NOTE: [DLPack] The stream protocol: a CUDA producer orders its pending work on `stream`
    # before handing the array over (1 names the legacy default stream); CPU arrays take none.
    capsule = array.__dlpack__(stream=stream) if int(device_type) == 2 else array.__dlpack__()
    view = _core.DLPackView(capsule)
    if not view.contiguous:
        raise ValueError(f"{what} is not contiguous: the kernel updates memory in place")
    return view


def step(params, grads, state, *, step, lr=None, stream=None, threads=0, flavor=None,
         **options):
    """One RMSProp step of ``params`` with ``grads``, in place.

    ``state``: {name: [arrays]} for each name in ``state_buffers(flavor, **options)``, one array
    per parameter, its size; float64 parameters keep float64 state, others float32 (or
    bfloat16 with ``state_dtype="bfloat16"``). ``step``: this step's number (1 for the first),
    for bias correction. ``lr``: this step's learning rate (default: the options'). CUDA arrays
    run on ``stream`` (a ``cudaStream_t`` as an int; default the legacy default stream), which
    is also what their producers are asked to order their work on. Master weights are not
    available here (use ``rmsprop.torch.RMSprop``).
    """
    resolved = resolve(flavor, options)
    if resolved.to_dict()["master_weights"]:
        raise ValueError("rmsprop.step: master_weights is not available for DLPack arrays")
    params, grads = list(params), list(grads)
    if len(grads) != len(params):
        raise ValueError(f"rmsprop.step: {len(grads)} gradients for {len(params)} parameters")
    names = tuple(name for name, used in zip(_STATE_NAMES, resolved.buffers_needed()) if used)
    for name in names:
        if name not in state or len(state[name]) != len(params):
            raise ValueError(f"rmsprop.step: state[{name!r}] must hold one array per parameter "
                             f"(the options use {', '.join(names) or 'no state'})")
    if not isinstance(step, int) or isinstance(step, bool) or step < 1:
        raise ValueError(f"rmsprop.step: step={step!r} must be an int >= 1")
    protocol_stream = 1 if stream is None else int(stream)
    # every array as a view, alive until the call returns (NOTE: [lifetimes]); the planner
    # checks them all before anything changes (NOTE: [step planner])
    param_views = [_view(p, f"parameter {i}", protocol_stream) for i, p in enumerate(params)]
    grad_views = [_view(g, f"gradient {i}", protocol_stream) for i, g in enumerate(grads)]
    state_views = [[_view(state[n][i], f"state[{n!r}][{i}]", protocol_stream)
                    for i in range(len(params))] if n in names else [None] * len(params)
                   for n in _STATE_NAMES]
    lr = resolved.to_dict()["lr"] if lr is None else lr
    _core.dlpack_step(resolved, float(lr), param_views, grad_views, state_views, step, threads,
                      int(stream or 0))
