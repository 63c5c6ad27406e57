"""The checks PyTorch applies to its own optimizers, in our words, run on ours and on
torch.optim.RMSprop side by side (docs/python.md has the table). Where ours does not do what
torch does, the case checks that ours refuses it clearly (by name, nothing changed)."""
import copy
import math

import pytest
import torch

import rmsprop.torch as rt

KINDS = {"ours": rt.RMSprop, "torch": torch.optim.RMSprop}
TORCH2 = int(torch.__version__.split(".")[0]) >= 2


def _rosenbrock(xy):
    x, y = xy
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


@pytest.fixture(params=sorted(KINDS))
def kind(request):
    return request.param


def test_per_group_options(kind):
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    opt = KINDS[kind]([{"params": [a]}, {"params": [b], "lr": 0.1, "momentum": 0.5}], lr=0.01)
    for _ in range(3):
        a.grad, b.grad = torch.ones(3), torch.ones(3)
        opt.step()
    assert opt.param_groups[1]["momentum"] == 0.5 and opt.param_groups[0]["momentum"] == 0
    assert (a.detach() > b.detach()).all()  # the larger lr moved b further


def test_non_contiguous_parameters(kind):
    torch.manual_seed(0)
    base = torch.randn(10, 5, 2, dtype=torch.float64)
    p = torch.nn.Parameter(base[..., 0])  # a strided view
    assert not p.is_contiguous()
    q = torch.nn.Parameter(p.detach().contiguous())
    opt, ref = KINDS[kind]([p], lr=0.01), torch.optim.RMSprop([q], lr=0.01)
    for _ in range(3):
        g = torch.randn(10, 5, dtype=torch.float64)
        p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        ref.step()
    # Ours and torch's order the step's operations differently: each step's update (at most
    # lr/sqrt(1 - alpha) = 0.1 in size) may differ by a few ulps, so a parameter near 0 gets an
    # absolute, not a relative, difference: 3 steps x 8 ulps of 0.1.
    atol = 3 * 8 * torch.finfo(torch.float64).eps * 0.01 / math.sqrt(1 - 0.99)
    assert torch.allclose(p, q, rtol=1e-12, atol=atol)
    assert torch.equal(base[..., 0], p.detach())  # stepped in place, in its storage


def test_complex_parameters_step_as_their_real_view(kind):
    p = torch.nn.Parameter(torch.randn(4, dtype=torch.complex64))
    q = torch.nn.Parameter(torch.view_as_real(p.detach()).clone())
    opt, ref = KINDS[kind]([p], lr=0.01), torch.optim.RMSprop([q], lr=0.01)
    g = torch.randn(4, dtype=torch.complex64)
    p.grad, q.grad = g.clone(), torch.view_as_real(g).clone()
    opt.step()
    ref.step()
    assert torch.allclose(torch.view_as_real(p.detach()), q.detach())
    assert opt.state[p]["square_avg"].dtype == torch.complex64  # state as torch keeps it


def test_momentum_one_and_weight_decay_one_are_taken(kind):
    p = torch.nn.Parameter(torch.ones(3))
    opt = KINDS[kind]([p], lr=0.01, momentum=1, weight_decay=1)
    p.grad = torch.ones(3)
    opt.step()
    assert torch.isfinite(p).all()


def test_state_dict_is_deterministic_for_equal_but_not_identical_parameters(kind):
    torch.manual_seed(0)
    w = torch.randn(3, 2, dtype=torch.float64)
    p1, p2 = torch.nn.Parameter(w.clone()), torch.nn.Parameter(w.clone())
    o1, o2 = KINDS[kind]([p1], lr=0.01, momentum=0.9), KINDS[kind]([p2], lr=0.01, momentum=0.9)
    g = torch.randn(3, 2, dtype=torch.float64)
    for p, o in ((p1, o1), (p2, o2)):
        for _ in range(3):
            p.grad = g.clone()
            o.step()
    # a state dict moved across (ids differ) steps the other exactly as the original
    o2.load_state_dict(copy.deepcopy(o1.state_dict()))
    for p, o in ((p1, o1), (p2, o2)):
        p.grad = g.clone()
        o.step()
    assert torch.equal(p1, p2)


def test_a_parameter_in_two_groups_is_refused(kind):
    p = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(ValueError, match="more than one parameter group"):
        KINDS[kind]([{"params": [p]}, {"params": [p]}])


def test_loads_state_dicts_without_the_newer_keys(kind):
    p = torch.nn.Parameter(torch.ones(3))
    opt = KINDS[kind]([p], lr=0.01)
    p.grad = torch.ones(3)
    opt.step()
    saved = opt.state_dict()
    for key in ("maximize", "foreach", "differentiable", "capturable"):
        saved["param_groups"][0].pop(key, None)
    fresh = KINDS[kind]([p], lr=0.01)
    fresh.load_state_dict(saved)
    p.grad = torch.ones(3)
    fresh.step()
    assert fresh.param_groups[0]["maximize"] is False


def test_sparse_rosenbrock_with_uncoalesced_gradients(kind):
    if kind == "torch":
        pytest.skip("torch.optim.RMSprop does not take sparse gradients")
    start = torch.tensor([1.5, 1.5], dtype=torch.float64)
    dense = torch.nn.Parameter(start.clone())
    sparse = torch.nn.Parameter(start.clone().reshape(2, 1))
    od, osp = KINDS[kind]([dense], lr=1e-3), KINDS[kind]([sparse], lr=1e-3)
    for _ in range(200):
        od.zero_grad()
        _rosenbrock(dense).backward()
        g = dense.grad.detach()
        od.step()
        # the same gradient as a sparse row gradient, each row given in two uncoalesced parts
        indices = torch.tensor([[0, 1, 0, 1]])
        values = torch.stack([g[0] / 2, g[1] / 4, g[0] / 2, 3 * g[1] / 4]).reshape(4, 1)
        sparse.grad = torch.sparse_coo_tensor(indices, values, (2, 1))
        osp.step()
    assert torch.allclose(sparse.detach().reshape(2), dense.detach(), rtol=1e-10, atol=0)
    assert _rosenbrock(dense.detach()) < _rosenbrock(start)


@pytest.mark.parametrize("bad, words", [
    (dict(lr=-1.0), "lr|learning rate"), (dict(eps=-1.0), "eps"), (dict(alpha=-0.5), "alpha"),
    (dict(momentum=-0.1), "momentum"), (dict(weight_decay=-1.0), "weight_decay"),
])
def test_invalid_arguments_are_refused_by_name(kind, bad, words):
    with pytest.raises(ValueError, match=words):
        KINDS[kind]([torch.nn.Parameter(torch.ones(2))], **bad)


def test_a_closure_is_called_with_grad_enabled_and_its_loss_returned(kind):
    p = torch.nn.Parameter(torch.tensor([1.5, 1.5], dtype=torch.float64))
    opt = KINDS[kind]([p], lr=1e-3)

    def closure():
        opt.zero_grad()
        loss = _rosenbrock(p)
        loss.backward()
        return loss

    with torch.no_grad():
        loss = opt.step(closure)
    assert math.isclose(float(loss), 56.5)
