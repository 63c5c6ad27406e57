"""rmsprop: the RMSProp family, one exact update rule, fused kernels.

- ``rmsprop.RMSprop``: the optimizer over NumPy float32/float64 arrays (the C++ optimizer).
- ``rmsprop.torch.RMSprop``: a ``torch.optim.Optimizer`` (import ``rmsprop.torch``; needs torch),
  on CPU and CUDA tensors.
- ``rmsprop.step``: one step over any DLPack arrays (NumPy, CuPy, JAX, torch), CPU or CUDA.

Options are the C++ library's, by the same names (docs/api.md); ``flavor`` picks a framework's
preset (torch, tf1, keras, optax, lasagne, caffe, ensmallen, timm_tf, hinton) and any option
you pass explicitly overrides it.
"""
from . import _core
from ._core import CheckpointError, InvalidArgument, InvalidOption, NonFiniteError
from ._dlpack import state_buffers, step
from ._options import resolve

FLAVORS = tuple(_core.flavors())

__all__ = ["RMSprop", "FLAVORS", "InvalidOption", "InvalidArgument", "NonFiniteError",
           "CheckpointError", "simd_target", "step", "state_buffers", "cuda_available"]


def simd_target():
    """The SIMD instruction set the fused kernel runs with on this CPU."""
    return _core.simd_target()


def cuda_available():
    """Whether this build has the CUDA backend and a CUDA device is present."""
    return _core.cuda_built() and _core.cuda_device_count() > 0


class RMSprop:
    """RMSProp over NumPy arrays, updated in place.

    >>> import numpy as np, rmsprop
    >>> w = np.zeros(3, dtype=np.float32)
    >>> opt = rmsprop.RMSprop([w], lr=0.1, flavor="tf1")
    >>> opt.step([np.ones(3, dtype=np.float32)])
    True

    Arrays must be C-contiguous float32 or float64; the optimizer keeps references to them.
    ``step(grads)`` returns False when the non_finite="skip" policy skipped the step.
    ``save(path)`` / ``load(path)`` use the C++ checkpoint format.
    """

    def __init__(self, arrays, flavor=None, **options):
        self._arrays = list(arrays)
        self._opt = _core.NumpyOptimizer(self._arrays, resolve(flavor, options))

    def step(self, grads):
        return self._opt.step(list(grads))

    def save(self, path):
        self._opt.save(str(path))

    def load(self, path):
        self._opt.load(str(path))

    @property
    def steps_taken(self):
        return self._opt.steps_taken

    @property
    def options(self):
        """The effective options (the flavor's preset with your overrides), typed, by name."""
        return dict(self._opt.options())
