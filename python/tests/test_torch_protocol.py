"""torch.optim's protocol as the installed torch has it (1.13 and 2.x): rmsprop.torch.RMSprop as
a drop-in for torch.optim.RMSprop — its signature and group keys, tensor lr, state dicts both
ways mid-training, hooks, every scheduler, torch.compile, zero_grad, copies."""
import copy
import inspect
import pickle

import pytest
import torch

import rmsprop.torch as rt

TORCH2 = int(torch.__version__.split(".")[0]) >= 2


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(),
                               torch.nn.Linear(5, 1)).double()


def _batches(n):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(8, 6, generator=g, dtype=torch.float64),
             torch.randn(8, 1, generator=g, dtype=torch.float64)) for _ in range(n)]


def _train(model, opt, batches, scheduler=None):
    for x, y in batches:
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        if scheduler is not None:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(loss.item())
            else:
                scheduler.step()


def _close(a, b, rel=1e-12):
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, rtol=rel, atol=0), (p - q).abs().max()


def test_takes_torch_optim_rmsprops_signature():
    ours = inspect.signature(rt.RMSprop).parameters
    theirs = inspect.signature(torch.optim.RMSprop).parameters
    # every argument torch takes, by the same name; those torch takes positionally, at the
    # same position (2.x: capturable after centered)
    assert set(theirs) <= set(ours)
    positional = [n for n, p in theirs.items()
                  if p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD and n != "params"]
    if TORCH2:
        assert [n for n in ours][1:len(positional) + 1] == positional
    p = torch.nn.Parameter(torch.ones(3))
    opt = rt.RMSprop([p], 0.01, foreach=None, differentiable=False)
    assert opt.param_groups[0]["foreach"] is None
    assert opt.param_groups[0]["differentiable"] is False
    assert rt.RMSprop([p], foreach=True).param_groups[0]["foreach"] is True
    with pytest.raises(ValueError, match="differentiable=True: .*only differentiable=False"):
        rt.RMSprop([p], differentiable=True)
    with pytest.raises(ValueError, match="differentiable=True"):
        rt.RMSprop([{"params": [p], "differentiable": True}])


def test_tensor_lr_is_kept_and_read_every_step():
    a, b = _model(), _model()
    lr = torch.tensor(0.01, dtype=torch.float64)
    ours = rt.RMSprop(a.parameters(), lr=lr)
    assert ours.param_groups[0]["lr"] is lr
    theirs = torch.optim.RMSprop(b.parameters(), lr=0.01)
    batches = _batches(6)
    _train(a, ours, batches[:3])
    _train(b, theirs, batches[:3])
    lr.fill_(0.003)  # written in place, as a schedule may
    theirs.param_groups[0]["lr"] = 0.003
    _train(a, ours, batches[3:])
    _train(b, theirs, batches[3:])
    _close(a, b)


@pytest.mark.parametrize("first", ["ours", "torch"])
def test_state_dicts_go_both_ways_mid_training(first):
    batches = _batches(8)
    kinds = {"ours": rt.RMSprop, "torch": torch.optim.RMSprop}
    second = "torch" if first == "ours" else "ours"
    config = dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01)
    straight = _model()
    _train(straight, kinds[first](straight.parameters(), **config), batches)
    switched = _model()
    opt = kinds[first](switched.parameters(), **config)
    _train(switched, opt, batches[:4])
    other = kinds[second](switched.parameters(), **config)
    other.load_state_dict(opt.state_dict())
    _train(switched, other, batches[4:])
    _close(switched, straight)


def test_step_and_state_dict_hooks_fire_as_torchs():
    if not hasattr(torch.optim.Optimizer, "register_step_pre_hook"):
        pytest.skip(f"torch {torch.__version__} has no optimizer step hooks")
    events = {"ours": [], "torch": []}
    model = _model()
    for name, cls in (("ours", rt.RMSprop), ("torch", torch.optim.RMSprop)):
        opt = cls(model.parameters(), lr=0.01)
        log = events[name]
        opt.register_step_pre_hook(lambda o, args, kwargs, log=log: log.append("pre"))
        opt.register_step_post_hook(lambda o, args, kwargs, log=log: log.append("post"))
        hooks = [("register_state_dict_pre_hook", "sd_pre"),
                 ("register_state_dict_post_hook", "sd_post"),
                 ("register_load_state_dict_pre_hook", "load_pre"),
                 ("register_load_state_dict_post_hook", "load_post")]
        for method, tag in hooks:
            if hasattr(opt, method):  # each returns None: the state dict is left as it is
                getattr(opt, method)(lambda o, *a, log=log, tag=tag: log.append(tag))
        _train(model, opt, _batches(2))
        opt.load_state_dict(opt.state_dict())
    assert events["ours"] == events["torch"]
    assert events["ours"][:2] == ["pre", "post"]


def _schedulers():
    lr = torch.optim.lr_scheduler
    yield "StepLR", lambda o: lr.StepLR(o, step_size=2, gamma=0.5)
    yield "OneCycleLR", lambda o: lr.OneCycleLR(o, max_lr=0.05, total_steps=12)  # cycles momentum
    yield "CyclicLR", lambda o: lr.CyclicLR(o, base_lr=0.001, max_lr=0.02, step_size_up=3)
    yield "CosineAnnealingWarmRestarts", lambda o: lr.CosineAnnealingWarmRestarts(o, T_0=3)
    yield "SequentialLR", lambda o: lr.SequentialLR(
        o, [lr.LinearLR(o, start_factor=0.1, total_iters=3), lr.ExponentialLR(o, gamma=0.9)],
        milestones=[3])
    yield "ReduceLROnPlateau", lambda o: lr.ReduceLROnPlateau(o, patience=0, factor=0.5)
    yield "SWALR", lambda o: torch.optim.swa_utils.SWALR(o, swa_lr=0.002, anneal_epochs=3)


@pytest.mark.parametrize("name, make", list(_schedulers()), ids=[n for n, _ in _schedulers()])
def test_every_scheduler_drives_ours_as_it_drives_torchs(name, make):
    batches = _batches(12)
    a, b = _model(), _model()
    ours = rt.RMSprop(a.parameters(), lr=0.01, momentum=0.9)
    theirs = torch.optim.RMSprop(b.parameters(), lr=0.01, momentum=0.9)
    sa, sb = make(ours), make(theirs)
    for batch in batches:
        _train(a, ours, [batch], sa)
        _train(b, theirs, [batch], sb)
        for key in ("lr", "momentum"):
            assert ours.param_groups[0][key] == theirs.param_groups[0][key], key
    _close(a, b)


def test_zero_grad_follows_the_installed_torch():
    p = torch.nn.Parameter(torch.ones(3))
    for opt in (rt.RMSprop([p]), torch.optim.RMSprop([p])):
        p.grad = torch.ones(3)
        opt.zero_grad()
        assert (p.grad is None) == TORCH2 or (p.grad is not None and not p.grad.any())


def test_copies_and_repr():
    model = _model()
    opt = rt.RMSprop(model.parameters(), lr=0.01, momentum=0.9)
    _train(model, opt, _batches(2))
    for other in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        assert len(other.state) == len(opt.state)
        for s, t in zip(opt.state.values(), other.state.values()):
            assert s["step"] == t["step"] and torch.equal(s["square_avg"], t["square_avg"])
    text = repr(opt)
    assert text.startswith("RMSprop (") and "momentum: 0.9" in text


@pytest.mark.skipif(not TORCH2 or not hasattr(torch, "compile"), reason="torch.compile: torch 2")
def test_torch_compile_of_a_training_step_equals_eager():
    batches = _batches(4)
    a, b = _model(), _model()
    oa, ob = rt.RMSprop(a.parameters(), lr=0.01), rt.RMSprop(b.parameters(), lr=0.01)

    def step(model, opt, x, y):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss

    compiled = torch.compile(step, backend="eager")  # graph breaks at the extension call
    for x, y in batches:
        step(a, oa, x, y)
        compiled(b, ob, x, y)
    _close(a, b, rel=0)
