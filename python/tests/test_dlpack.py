"""rmsprop.step over DLPack arrays (NumPy and torch here, on the CPU; CUDA arrays in
test_cuda.py): the same bits as the optimizers over the same kernels, and clear refusals."""
import numpy as np
import pytest
import torch

import rmsprop
import rmsprop.torch as rt


def test_state_buffers_follow_the_options():
    assert rmsprop.state_buffers() == ("square_avg",)
    assert rmsprop.state_buffers(centered=True, momentum=0.9) == \
        ("square_avg", "grad_avg", "momentum_buffer")
    assert rmsprop.state_buffers(algorithm="sgd") == ()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_arrays_step_as_the_numpy_optimizer(dtype):
    rng = np.random.default_rng(3)
    options = dict(lr=0.01, momentum=0.9, centered=True, weight_decay=1e-3)
    w = [rng.standard_normal(n).astype(dtype) for n in (5, 1000, 70001)]
    w_opt = [x.copy() for x in w]
    state = {name: [np.zeros_like(x) for x in w] for name in rmsprop.state_buffers(**options)}
    opt = rmsprop.RMSprop(w_opt, **options)
    for s in range(1, 6):
        grads = [rng.standard_normal(x.size).astype(dtype) for x in w]
        rmsprop.step(w, grads, state, step=s, **options)
        opt.step(grads)
    for a, b in zip(w, w_opt):
        assert np.array_equal(a, b)


def test_torch_tensors_and_bfloat16_state_as_the_torch_optimizer():
    torch.manual_seed(0)
    options = dict(lr=0.01, momentum=0.9, state_dtype="bfloat16")
    params = [torch.randn(n, dtype=torch.bfloat16) for n in (3, 4099)]
    mirror = [torch.nn.Parameter(p.clone()) for p in params]
    state = {name: [torch.zeros(p.numel(), dtype=torch.bfloat16) for p in params]
             for name in rmsprop.state_buffers(**options)}
    opt = rt.RMSprop(mirror, **options)
    for s in range(1, 4):
        grads = [torch.randn(p.numel(), dtype=torch.bfloat16) for p in params]
        rmsprop.step(params, grads, state, step=s, **options)
        for m, g in zip(mirror, grads):
            m.grad = g.clone()
        opt.step()
    # The same kernel and values; the seeds of stochastic rounding are not used here.
    for a, b in zip(params, mirror):
        assert torch.equal(a, b.detach())


def test_bad_arrays_are_refused_by_name():
    w = np.zeros(4, np.float32)
    state = {"square_avg": [np.zeros(4, np.float32)]}
    with pytest.raises(TypeError, match="gradient 0 .list. does not speak DLPack"):
        rmsprop.step([w], [[1.0, 2.0, 3.0, 4.0]], state, step=1)
    with pytest.raises(ValueError, match="parameter 0: its gradient is 4 float64 on cpu, "
                                         "expected 4 float32"):
        rmsprop.step([w], [np.ones(4)], state, step=1)
    with pytest.raises(ValueError, match="parameter 0: state 'square_avg' is 3 float32"):
        rmsprop.step([w], [np.ones(4, np.float32)], {"square_avg": [np.zeros(3, np.float32)]},
                     step=1)
    with pytest.raises(ValueError, match="state\\['square_avg'\\] must hold one array"):
        rmsprop.step([w], [np.ones(4, np.float32)], {}, step=1)
    with pytest.raises(ValueError, match="parameter 0 is not contiguous"):
        rmsprop.step([np.zeros(8, np.float32)[::2]], [np.ones(4, np.float32)], state, step=1)
    with pytest.raises(ValueError, match="step=0 must be an int >= 1"):
        rmsprop.step([w], [np.ones(4, np.float32)], state, step=0)
    with pytest.raises(ValueError, match="alpha=-2"):
        rmsprop.step([w], [np.ones(4, np.float32)], state, step=1, alpha=-2.0)
    with pytest.raises(ValueError, match="parameter 0 needs state 'square_avg' as 4 float32 on "
                                         "cpu; the array given is float64"):
        rmsprop.step([w], [np.ones(4, np.float32)], {"square_avg": [np.zeros(4)]}, step=1)
    # the planner checks every array before anything changes: a good parameter before a bad
    # one is not stepped, and bad learning rates are refused
    w1 = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="parameter 1 has dtype int32"):
        rmsprop.step([w1, np.zeros(4, np.int32)], [np.ones(4, np.float32), np.ones(4, np.int32)],
                     {"square_avg": [np.zeros(4, np.float32), np.zeros(4, np.float32)]}, step=1)
    assert np.array_equal(w1, np.zeros(4, np.float32))
    for lr in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="invalid learning rate"):
            rmsprop.step([w], [np.ones(4, np.float32)], state, step=1, lr=lr)
    assert np.array_equal(w, np.zeros(4, np.float32))  # nothing changed
