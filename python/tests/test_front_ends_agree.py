"""Every front end steps through the one planner (NOTE: [step planner]): the same bfloat16
stochastic-rounding bits as the C++ and libtorch optimizers, and the same refusals before
anything changes."""
import os

import pytest
import torch

import rmsprop
import rmsprop.torch as rt

RECORDED = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "recorded",
                        "bf16_stochastic_rounding.txt")
SIZES = (3000, 77)
OPTIONS = dict(lr=1e-2, momentum=0.9, stochastic_rounding=True, master_weights=False)


def _params():
    # the values of tests/torch_optimizer_test.cpp's recorded run, exact in bfloat16
    return [torch.tensor([((j * 37 + i * 11) % 257 - 128) / 64.0 for j in range(n)],
                         dtype=torch.bfloat16) for i, n in enumerate(SIZES)]


def _grads(step):
    return [torch.tensor([((j * 13 + i * 7 + step * 29) % 101 - 50) / 32.0 for j in range(n)],
                         dtype=torch.bfloat16) for i, n in enumerate(SIZES)]


def _fnv1a(t):
    h = 0xcbf29ce484222325
    for byte in t.view(torch.int16).numpy().tobytes():
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def _recorded():
    with open(RECORDED) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def test_bf16_stochastic_rounding_bits_are_the_recorded_ones_from_python():
    params = [torch.nn.Parameter(p) for p in _params()]
    opt = rt.RMSprop(params, **OPTIONS)
    for step in range(1, 6):
        for p, g in zip(params, _grads(step)):
            p.grad = g
        opt.step()
    assert [_fnv1a(p.detach()) for p in params] == _recorded()


def test_bf16_stochastic_rounding_bits_are_the_recorded_ones_from_dlpack():
    params = _params()
    state = {"square_avg": [torch.zeros(n) for n in SIZES],
             "momentum_buffer": [torch.zeros(n) for n in SIZES]}
    for step in range(1, 6):
        rmsprop.step(params, _grads(step), state, step=step, **OPTIONS)
    assert [_fnv1a(p) for p in params] == _recorded()


@pytest.mark.parametrize("dtype, option, words", [
    (torch.float64, dict(state_dtype="bfloat16"), "float64 parameters keep float64 state"),
    (torch.float16, dict(stochastic_rounding=True), "stochastic_rounding is for bfloat16"),
])
def test_python_refuses_what_cpp_and_libtorch_refuse_before_anything_changes(dtype, option,
                                                                             words):
    good = torch.nn.Parameter(torch.ones(4))
    bad = torch.nn.Parameter(torch.ones(3, dtype=dtype))
    opt = rt.RMSprop([{"params": [good]}, {"params": [bad], **option}])
    good.grad, bad.grad = torch.ones(4), torch.ones(3, dtype=dtype)
    with pytest.raises(ValueError, match=f"group 1, parameter 0: {words}"):
        opt.step()
    assert torch.equal(good.detach(), torch.ones(4)) and len(opt.state) == 0


def test_a_refused_step_changes_nothing_in_any_group():
    a, b = torch.nn.Parameter(torch.ones(4)), torch.nn.Parameter(torch.ones(4))
    opt = rt.RMSprop([{"params": [a]}, {"params": [b]}], momentum=0.9)
    a.grad, b.grad = torch.ones(4), torch.ones(4)
    opt.step()
    before = {k: {n: (t.clone() if torch.is_tensor(t) else t) for n, t in v.items()}
              for k, v in opt.state_dict()["state"].items()}
    b.grad = torch.tensor([1.0, float("nan"), 1.0, 1.0])  # refused, in the second group
    with pytest.raises(FloatingPointError, match="group 1, parameter 0 at element 1: nan"):
        opt.step()
    opt.param_groups[1]["lr"] = -1.0  # a bad value set after construction
    b.grad = torch.ones(4)
    with pytest.raises(ValueError, match="invalid learning rate -1 in group 1"):
        opt.step()
    after = opt.state_dict()["state"]
    assert torch.equal(a.detach(), b.detach())
    for k, v in before.items():
        for n, t in v.items():
            assert torch.equal(after[k][n], t) if torch.is_tensor(t) else after[k][n] == t
