"""rmsprop.torch.RMSprop against torch.optim.RMSprop on a real model with real backward."""
import copy
import itertools
import math

import pytest
import torch

import rmsprop
import rmsprop.torch as rt

torch.set_num_threads(1)


def make_model(dtype, seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    return model.to(dtype)


def data(dtype, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 6, generator=g).to(dtype)
    y = torch.randn(32, 2, generator=g).to(dtype)
    return x, y


def train(model, opt, steps, dtype, scheduler=None):
    x, y = data(dtype)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()
    return [p.detach().clone() for p in model.parameters()]


def max_relative(a, b):
    return max(((x - y).abs().max() / y.abs().max().clamp_min(1e-30)).item()
               for x, y in zip(a, b))


CONFIGS = [dict(zip(("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize"), v))
           for v in itertools.product([1e-2], [0.99, 0.9], [1e-8], [0.0, 0.1], [0.0, 0.9],
                                      [False, True], [False, True])]


ID = lambda c: ",".join(f"{k}={v}" for k, v in c.items())  # noqa: E731


def same_gradients(config, dtype, steps):
    """Both optimizers fed the same gradient sequence (torch's model's real backward): ours
    cannot drift through a chaotic trajectory, so any difference is the step's own rounding."""
    ours_model, theirs_model = make_model(dtype), make_model(dtype)
    ours = rt.RMSprop(ours_model.parameters(), **config)
    theirs = torch.optim.RMSprop(theirs_model.parameters(), **config)
    x, y = data(dtype)
    for _ in range(steps):
        theirs.zero_grad()
        torch.nn.functional.mse_loss(theirs_model(x), y).backward()
        for p, q in zip(ours_model.parameters(), theirs_model.parameters()):
            p.grad = q.grad.clone()
        ours.step()
        theirs.step()
    return max_relative(list(ours_model.parameters()), list(theirs_model.parameters()))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("config", CONFIGS, ids=ID)
def test_matches_torch(config, dtype):
    # Fed the same gradients, the two can differ only by the rounding of their steps. One step
    # is ~10 IEEE operations per element, each rounding by at most half an ulp, in a different
    # order than torch's: at most 16 ulps of the parameter's scale per step, and the averages
    # (decays < 1) do not amplify it. So 100 steps stay within 100 * 16 ulps of the dtype, on
    # any machine (a bound from the arithmetic, not from one machine's trajectory).
    steps = 100
    assert same_gradients(config, dtype, steps) <= steps * 16 * torch.finfo(dtype).eps


def test_is_a_torch_optimizer_with_param_groups_and_closure():
    model = make_model(torch.float64)
    opt = rt.RMSprop([{"params": model[0].parameters(), "lr": 0.1},
                      {"params": model[2].parameters(), "momentum": 0.9}], lr=0.01)
    assert isinstance(opt, torch.optim.Optimizer)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 0.01
    x, y = data(torch.float64)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    first = opt.step(closure).item()
    for _ in range(20):
        last = opt.step(closure).item()
    assert last < first
    assert "momentum_buffer" in opt.state[model[2].weight]
    assert "momentum_buffer" not in opt.state[model[0].weight]


def test_flavor_defaults_and_explicit_overrides():
    p = torch.nn.Parameter(torch.zeros(3))
    opt = rt.RMSprop([p], flavor="tf1", eps=1e-3)
    group = opt.param_groups[0]
    assert group["eps"] == 1e-3 and group["alpha"] == 0.9 and group["lr"] == 1e-3
    assert group["initial_accumulator_value"] == 1.0 and group["lr_in_momentum"]
    # a worked example by hand from TF1's formula: η=0.016, ρ=0.9, ε=1e-3, μ=0.9
    p = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
    opt = rt.RMSprop([p], flavor="tf1", lr=0.016, alpha=0.9, eps=1e-3, momentum=0.9)
    p.grad = torch.tensor([0.5, -1.0, 1e-3, 0.0], dtype=torch.float64)
    opt.step()
    assert torch.allclose(p.detach(), torch.tensor([-0.008314, 0.015992, -0.000017, 0.0],
                                                   dtype=torch.float64), atol=5e-7)


def test_lr_scheduler_drives_the_learning_rate():
    ours, theirs = make_model(torch.float64), make_model(torch.float64)
    oo = rt.RMSprop(ours.parameters(), lr=0.05, momentum=0.5)
    to = torch.optim.RMSprop(theirs.parameters(), lr=0.05, momentum=0.5)
    a = train(ours, oo, 30, torch.float64, torch.optim.lr_scheduler.StepLR(oo, 10, 0.5))
    b = train(theirs, to, 30, torch.float64, torch.optim.lr_scheduler.StepLR(to, 10, 0.5))
    assert oo.param_groups[0]["lr"] == pytest.approx(0.05 * 0.125)
    assert max_relative(a, b) <= 1e-12


def test_parameter_without_grad_is_skipped():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = rt.RMSprop([a, b], lr=0.1)
    a.grad = torch.ones(2)
    opt.step()
    assert torch.equal(b.detach(), torch.ones(2)) and b not in opt.state
    assert opt.state[a]["step"] == 1


@pytest.mark.parametrize("switch_at", [40])
def test_state_dict_round_trips_with_torch_mid_training(switch_at):
    config = dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01)
    x, y = data(torch.float64)

    def run(segments):
        model = make_model(torch.float64)
        state = None
        for kind, steps in segments:
            opt = kind(model.parameters(), **config)
            if state is not None:
                opt.load_state_dict(state)
            train(model, opt, steps, torch.float64)
            state = opt.state_dict()
        return [p.detach().clone() for p in model.parameters()]

    straight = run([(rt.RMSprop, 100)])
    ours_then_torch_then_ours = run([(rt.RMSprop, switch_at), (torch.optim.RMSprop, 30),
                                     (rt.RMSprop, 100 - switch_at - 30)])
    ours_then_ours = run([(rt.RMSprop, switch_at), (rt.RMSprop, 100 - switch_at)])
    assert max_relative(ours_then_ours, straight) == 0
    assert max_relative(ours_then_torch_then_ours, straight) <= 1e-12


def test_state_dict_keys_match_torch():
    ours, theirs = make_model(torch.float32), make_model(torch.float32)
    config = dict(momentum=0.9, centered=True)
    oo, to = rt.RMSprop(ours.parameters(), **config), torch.optim.RMSprop(theirs.parameters(), **config)
    train(ours, oo, 1, torch.float32)
    train(theirs, to, 1, torch.float32)
    for a, b in zip(oo.state_dict()["state"].values(), to.state_dict()["state"].values()):
        assert set(a) == set(b)
        for key in a:
            if torch.is_tensor(b[key]):
                assert a[key].shape == b[key].shape and a[key].dtype == b[key].dtype


def test_bad_tensors_are_refused_clearly():
    p = torch.nn.Parameter(torch.ones(4, 4))
    r = torch.ones(3, dtype=torch.int32, requires_grad=False)
    r.grad = torch.ones(3, dtype=torch.int32)
    with pytest.raises(ValueError, match="parameter 0 has dtype torch.int32: supported are"):
        rt.RMSprop([r]).step()
    c = torch.nn.Parameter(torch.ones(3, dtype=torch.complex64))
    c.grad = torch.ones(3, dtype=torch.complex64)
    with pytest.raises(ValueError, match="parameter 0 is complex: its state is complex in its "
                                         "own precision .state_dtype=float32., not "
                                         "state_dtype=bfloat16"):
        rt.RMSprop([c], state_dtype="bfloat16").step()
    q = torch.nn.Parameter(torch.ones(3, 2))
    q.grad = torch.sparse_coo_tensor([[0], [1]], [1.0], (3, 2))  # two sparse dimensions
    with pytest.raises(RuntimeError, match="row gradients .one sparse dimension."):
        rt.RMSprop([q]).step()
    m = torch.nn.Parameter(torch.ones(3, device="meta"))  # a device that is not the CPU
    m.grad = torch.ones(3, device="meta")
    with pytest.raises(ValueError, match="parameter 0 is on meta: rmsprop steps tensors on the "
                                         "CPU or on a CUDA device"):
        rt.RMSprop([m]).step()
    with pytest.raises(ValueError, match="alpha=-0.5"):
        rt.RMSprop([p], alpha=-0.5)
    with pytest.raises(ValueError, match="capturable=True with non_finite='error'"):
        rt.RMSprop([p], capturable=True, non_finite="error")
    with pytest.raises(ValueError, match="unknown flavor 'pytorch'"):
        rt.RMSprop([p], flavor="pytorch")
    with pytest.raises(TypeError, match="unknown options"):
        rt.RMSprop([p], betas=(0.9, 0.99))


def test_non_finite_gradient_policy():
    p, q = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
    q.grad = torch.ones(2)
    p.grad = torch.tensor([1.0, math.nan, 1.0])
    with pytest.raises(FloatingPointError, match="parameter 1 at element 1: nan"):
        rt.RMSprop([q, p], non_finite="error").step()
    assert torch.equal(p.detach(), torch.ones(3)) and torch.equal(q.detach(), torch.ones(2))
    opt = rt.RMSprop([q, p], non_finite="skip")
    opt.step()  # skipped for every parameter, the finite one too
    assert torch.equal(q.detach(), torch.ones(2)) and len(opt.state) == 0
    rt.RMSprop([q, p], non_finite="propagate").step()
    assert torch.isnan(p.detach()[1]) and torch.isfinite(q.detach()).all()


def test_bfloat16_parameters_with_master_weights():
    p = torch.nn.Parameter(torch.ones(1000, dtype=torch.bfloat16))
    opt = rt.RMSprop([p], lr=1e-4, master_weights=True)
    for _ in range(50):
        p.grad = torch.ones(1000, dtype=torch.bfloat16)
        opt.step()
    master = opt.state[p]["master_weights"]
    assert master.dtype == torch.float32 and master[0].item() < 1.0 - 40e-4
    assert torch.equal(p.detach(), master.to(torch.bfloat16))


def test_task_cache_follows_replaced_gradients_data_and_state():
    """NOTE: [task cache]: new gradient tensors, new parameter storage, loaded state."""
    a, b = torch.nn.Parameter(torch.ones(5, dtype=torch.float64)), \
        torch.nn.Parameter(torch.ones(5, dtype=torch.float64))
    ours, theirs = rt.RMSprop([a], momentum=0.9), torch.optim.RMSprop([b], momentum=0.9)
    for t in range(6):
        for p in (a, b):
            p.grad = torch.arange(5, dtype=torch.float64) * (t + 1) - 2  # a new tensor each step
            if t == 3:
                p.data = p.data.clone()  # new storage for the parameter
        ours.step()
        theirs.step()
        if t == 4:
            ours.load_state_dict(theirs.state_dict())  # new state tensors
    assert torch.allclose(a.detach(), b.detach(), rtol=1e-14, atol=0)


def test_deep_copy_and_pickle_keep_stepping_the_same():
    import copy
    import pickle
    torch.manual_seed(1)
    p = torch.nn.Parameter(torch.randn(50))
    opt = rt.RMSprop([p], lr=0.01, momentum=0.9, threads=1)
    p.grad = torch.randn(50)
    opt.step()
    for clone in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        q = clone.param_groups[0]["params"][0]
        q.grad = p.grad.clone()
        expected = copy.deepcopy(opt)
        e = expected.param_groups[0]["params"][0]
        e.grad = p.grad.clone()
        clone.step()
        expected.step()
        assert torch.equal(q, e)
        assert clone.state[q]["step"] == 2


def test_load_state_dict_keeps_master_weights_float32_and_steps_on():
    # torch's load_state_dict casts floating state to the parameter's dtype: a bfloat16
    # parameter's float32 master copy came back as bfloat16 and the kernel read past it
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(1000).to(torch.bfloat16))
    opt = rt.RMSprop([p], lr=1e-2, master_weights=True)
    p.grad = torch.randn(1000).to(torch.bfloat16)
    opt.step()
    q = torch.nn.Parameter(p.detach().clone())
    other = rt.RMSprop([q], lr=1e-2, master_weights=True)
    other.load_state_dict(opt.state_dict())
    assert other.state[q]["master_weights"].dtype == torch.float32
    assert torch.equal(other.state[q]["master_weights"], opt.state[p]["master_weights"])
    q.grad = p.grad.clone()
    opt.step()
    other.step()
    assert torch.equal(p, q)


def test_load_state_dict_refuses_state_of_another_size():
    p = torch.nn.Parameter(torch.zeros(5, dtype=torch.float64))
    opt = rt.RMSprop([p])
    p.grad = torch.ones(5, dtype=torch.float64)
    opt.step()
    state = copy.deepcopy(opt.state_dict())
    state["state"][0]["square_avg"] = torch.zeros(12, dtype=torch.float64)
    fresh = rt.RMSprop([p])
    with pytest.raises(ValueError, match=r"state 'square_avg' has shape \(12,\), the parameter"):
        fresh.load_state_dict(state)  # checked when loaded (test_error_contract.py has more)
    assert len(fresh.state) == 0
    # state set directly, past load_state_dict: the step's own check names it
    opt.state[p]["square_avg"] = torch.zeros(12, dtype=torch.float64)
    with pytest.raises(ValueError, match="state 'square_avg' is 12 float64 on cpu, expected 5"):
        opt.step()
