"""8-bit optimizer state (state_dtype="int8", NOTE: [8-bit state] in include/rmsprop/state8.hpp)
from Python: the same bits as the NumPy optimizer (the C++ core), uint8 state tensors of codes
and block scales in the state dict, state dicts that continue bitwise, conversion to float32
state and back, float32 state below state8_min_size, and refusals by name."""
import copy

import numpy as np
import pytest
import torch

import rmsprop
import rmsprop.torch as rt

BIG, SMALL = 5000, 100
OPTIONS = dict(lr=1e-2, momentum=0.9, centered=True, state_dtype="int8")


def state8_bytes(n):
    """NOTE: [8-bit state]: the codes, padded to 4 bytes, then a float32 scale per 256."""
    return (n + 3) // 4 * 4 + (n + 255) // 256 * 4


def _gradients(step):
    g = torch.Generator().manual_seed(100 + step)
    return [torch.randn(BIG, generator=g) * (1 + step), torch.randn(SMALL, generator=g)]


def _torch_run(steps, opt=None, params=None):
    if params is None:
        g = torch.Generator().manual_seed(1)
        params = [torch.nn.Parameter(torch.randn(n, generator=g)) for n in (BIG, SMALL)]
    if opt is None:
        opt = rt.RMSprop(params, **OPTIONS)
    for step in steps:
        for p, grad in zip(params, _gradients(step)):
            p.grad = grad
        opt.step()
    return params, opt


def test_same_bits_as_the_numpy_optimizer_and_uint8_state_of_the_documented_size():
    params, opt = _torch_run(range(4))
    g = torch.Generator().manual_seed(1)
    arrays = [torch.randn(n, generator=g).numpy().copy() for n in (BIG, SMALL)]
    ref = rmsprop.RMSprop(arrays, **OPTIONS)
    for step in range(4):
        ref.step([t.numpy().copy() for t in _gradients(step)])
    for p, a in zip(params, arrays):
        assert np.array_equal(p.detach().numpy(), a)
    big, small = opt.state[params[0]], opt.state[params[1]]
    for key in ("square_avg", "grad_avg", "momentum_buffer"):
        assert big[key].dtype == torch.uint8 and big[key].numel() == state8_bytes(BIG)
        assert small[key].dtype == torch.float32  # under state8_min_size (4096)
    assert state8_bytes(BIG) / BIG < 1.02  # bytes per value, scales included


def test_state_dict_round_trip_continues_bitwise():
    straight, _ = _torch_run(range(6))
    params, opt = _torch_run(range(3))
    saved = copy.deepcopy(opt.state_dict())
    fresh = rt.RMSprop(params, **OPTIONS)
    fresh.load_state_dict(saved)
    _torch_run(range(3, 6), fresh, params)
    for a, b in zip(straight, params):
        assert torch.equal(a, b)


def test_converts_to_float32_state_and_back_within_the_codes_bound():
    params, opt = _torch_run(range(3))
    codes = opt.state[params[0]]["square_avg"].clone()
    opt.param_groups[0]["state_dtype"] = "float32"
    _torch_run([3], opt, params)
    assert opt.state[params[0]]["square_avg"].dtype == torch.float32
    opt.param_groups[0]["state_dtype"] = "int8"
    _torch_run([4], opt, params)
    back = opt.state[params[0]]["square_avg"]
    assert back.dtype == torch.uint8 and back.numel() == codes.numel()


def test_float64_and_sparse_and_dlpack_are_refused_by_name_and_change_nothing():
    p = torch.nn.Parameter(torch.ones(BIG, dtype=torch.float64))
    p.grad = torch.ones(BIG, dtype=torch.float64)
    opt = rt.RMSprop([p], state_dtype="int8")
    with pytest.raises(ValueError, match="state_dtype=int8 is for float32 and 16-bit"):
        opt.step()
    assert torch.equal(p.detach(), torch.ones(BIG, dtype=torch.float64)) and len(opt.state) == 0
    e = torch.nn.Parameter(torch.ones(BIG, 2))
    e.grad = torch.sparse_coo_tensor(torch.tensor([[1, 7]]), torch.ones(2, 2), (BIG, 2))
    opt = rt.RMSprop([e], state_dtype="int8")
    with pytest.raises(ValueError, match="state_dtype=int8 with a row .sparse. gradient"):
        opt.step()
    assert torch.equal(e.detach(), torch.ones(BIG, 2)) and len(opt.state) == 0
    params = [torch.ones(BIG)]
    with pytest.raises(ValueError, match="state_dtype=int8 is not available from this front end"):
        rmsprop.step(params, [torch.ones(BIG)],
                      {"square_avg": [torch.zeros(BIG)]}, step=1, state_dtype="int8")
    assert torch.equal(params[0], torch.ones(BIG))


def test_state_dtype_int8_changes_the_result_and_min_size_decides_who_gets_it():
    a, _ = _torch_run(range(3))
    g = torch.Generator().manual_seed(1)
    b = [torch.nn.Parameter(torch.randn(n, generator=g)) for n in (BIG, SMALL)]
    opt = rt.RMSprop(b, **dict(OPTIONS, state_dtype="float32"))
    _torch_run(range(3), opt, b)
    assert not torch.equal(a[0], b[0])  # the knob changes the result on the big tensor
    assert torch.equal(a[1], b[1])  # and not on the one below state8_min_size
    g = torch.Generator().manual_seed(1)
    c = [torch.nn.Parameter(torch.randn(n, generator=g)) for n in (BIG, SMALL)]
    opt = rt.RMSprop(c, **dict(OPTIONS, state8_min_size=0))
    _torch_run(range(1), opt, c)
    assert opt.state[c[1]]["square_avg"].dtype == torch.uint8
