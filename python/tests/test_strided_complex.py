"""What torch.optim.RMSprop accepts, ours steps the same: strided parameters and gradients (views,
slices, transposes: NOTE: [strided parameters]), complex parameters as their real view
(complex64, complex128; complex state as torch keeps it), torch's option ranges, and values a
scheduler writes into a group between steps (checked when they change, naming the group)."""
import pytest
import torch

import rmsprop.torch as rt
from test_torch_optimizer import CONFIGS, ID


def _twins(make):
    """The same tensor twice: one for ours, one for torch."""
    a = make()
    return a, a.detach().clone()


def _run(config, params_ours, params_torch, grads, steps=20):
    ours = rt.RMSprop(params_ours, **config)
    theirs = torch.optim.RMSprop(params_torch, **config)
    for step in range(steps):
        for a, b, g in zip(params_ours, params_torch, grads(step)):
            a.grad, b.grad = g(a), g(b)
            assert a.grad.shape == a.shape
        ours.step()
        theirs.step()
    return ours, theirs


def _relative(a, b):
    a, b = torch.view_as_real(a) if a.is_complex() else a, \
        torch.view_as_real(b) if b.is_complex() else b
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("config", CONFIGS, ids=ID)
def test_strided_parameters_and_gradients_step_as_torch_steps_them(config):
    torch.manual_seed(0)
    base = torch.randn(6, 5, 2, dtype=torch.float64)
    w = torch.nn.Parameter(base[..., 1])  # a strided view of a bigger tensor
    t = torch.nn.Parameter(torch.randn(7, 3, dtype=torch.float64).t())  # a transpose
    w2, t2 = (torch.nn.Parameter(x.detach().clone()) for x in (w, t))
    assert not w.is_contiguous() and not t.is_contiguous()
    g = torch.Generator().manual_seed(1)
    gw = [torch.randn(6, 5, 2, generator=g, dtype=torch.float64) for _ in range(20)]
    gt = [torch.randn(7, 3, 2, generator=g, dtype=torch.float64) for _ in range(20)]

    def grads(step):  # strided gradients too: views of bigger tensors, each its own copy
        return [lambda p: gw[step].clone()[..., 0], lambda p: gt[step].clone()[..., 1].t()]

    _run(config, [w, t], [w2, t2], grads)
    # ~10 operations per element and step, in torch's order or not: 16 ulps per step at most
    for a, b in ((w, w2), (t, t2)):
        assert _relative(a.detach(), b.detach()) <= 20 * 16 * 2.0**-52
    assert torch.equal(base[..., 1], w.detach())  # stepped in its own storage


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("config", CONFIGS, ids=ID)
def test_complex_parameters_step_as_their_real_view_as_torch_steps_them(config, dtype):
    torch.manual_seed(0)
    z = torch.nn.Parameter(torch.randn(5, 3, dtype=dtype))
    z2 = torch.nn.Parameter(z.detach().clone())
    g = torch.Generator().manual_seed(2)
    gradients = [torch.randn(5, 3, generator=g, dtype=dtype) for _ in range(20)]
    ours, theirs = _run(config, [z], [z2], lambda step: [lambda p: gradients[step].clone()])
    eps = torch.finfo(torch.float32 if dtype == torch.complex64 else torch.float64).eps
    assert _relative(z.detach(), z2.detach()) <= 20 * 16 * eps
    for key, value in theirs.state[z2].items():  # torch's state dict keys, dtypes and shapes
        if torch.is_tensor(value) and key != "step":
            assert ours.state[z][key].dtype == value.dtype and ours.state[z][key].shape == value.shape


def test_a_scheduler_cycling_momentum_steps_and_a_bad_written_value_names_its_group():
    p, q = torch.nn.Parameter(torch.ones(4)), torch.nn.Parameter(torch.ones(4))
    opt = rt.RMSprop([{"params": [p]}, {"params": [q]}], lr=0.01, momentum=0.9)
    # CyclicLR writes momentum into every group at every step, up to 1 here (torch takes it)
    sched = torch.optim.lr_scheduler.CyclicLR(opt, 0.001, 0.01, step_size_up=2,
                                              base_momentum=0.8, max_momentum=1.0)
    for _ in range(6):
        p.grad, q.grad = torch.ones(4), torch.ones(4)
        opt.step()
        sched.step()
    assert torch.isfinite(p).all() and torch.isfinite(q).all()
    before = p.detach().clone(), q.detach().clone()
    opt.param_groups[1]["momentum"] = -0.5  # a value no framework takes, written between steps
    p.grad, q.grad = torch.ones(4), torch.ones(4)
    with pytest.raises(ValueError, match="group 1: invalid option momentum=-0.5"):
        opt.step()
    assert torch.equal(p.detach(), before[0]) and torch.equal(q.detach(), before[1])


def test_torch_ranges_are_taken_and_what_none_can_mean_is_refused():
    p = torch.nn.Parameter(torch.ones(3))
    for options in (dict(momentum=1, weight_decay=1), dict(alpha=1.0), dict(momentum=2.0)):
        rt.RMSprop([p], **options)
        torch.optim.RMSprop([p], **options)
    for options, words in ((dict(momentum=-0.1), "momentum=-0.1"), (dict(alpha=-1), "alpha=-1"),
                           (dict(eps=-1e-8), "eps=-1e-08"), (dict(lr=float("nan")), "lr=nan"),
                           (dict(nesterov=True), "Nesterov needs momentum"),
                           (dict(alpha=1.0, bias_correction=True), "needs alpha < 1")):
        with pytest.raises(ValueError, match=words):
            rt.RMSprop([p], **options)


@pytest.mark.parametrize("kind", ["ours", "torch"])
def test_a_bad_type_is_a_type_error_and_a_bad_value_a_value_error(kind):
    make = rt.RMSprop if kind == "ours" else torch.optim.RMSprop
    p = torch.nn.Parameter(torch.ones(3))
    for options in (dict(lr="abc"), dict(momentum=[1]), dict(alpha=object())):
        with pytest.raises(TypeError):
            make([p], **options)
    for options in (dict(lr=-1.0), dict(momentum=-1.0), dict(eps=-1.0)):
        with pytest.raises(ValueError):
            make([p], **options)
