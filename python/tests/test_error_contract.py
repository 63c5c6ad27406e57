"""The error contract (docs/api.md, "Errors"): a refused call changes nothing, and every loaded
value is checked before it is used — state dicts, checkpoint files and the paths they come
from. Each case is one a hostile user found; torch.optim.RMSprop beside ours where it has the
same call."""
import copy
import os
import stat

import numpy as np
import pytest
import torch

import rmsprop
import rmsprop.torch as rt
from rmsprop import _core


def stepped(cls, shape, steps=1, **options):
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(*shape))
    opt = cls([p], lr=0.01, momentum=0.9, centered=True, **options)
    for _ in range(steps):
        p.grad = torch.randn(*shape)
        opt.step()
    return p, opt


def snapshot(opt):
    return copy.deepcopy(opt.state_dict())


def assert_same_state(a, b):
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys()
    for pid in a["state"]:
        for key, value in a["state"][pid].items():
            other = b["state"][pid][key]
            assert (torch.equal(value, other) if torch.is_tensor(value) else value == other), key


@pytest.mark.parametrize("cls", [rt.RMSprop, torch.optim.RMSprop], ids=["ours", "torch"])
def test_a_state_of_another_shape_is_refused(cls):
    _, source = stepped(cls, (3, 4))
    p, target = stepped(cls, (4, 3), steps=2)
    before = snapshot(target)
    if cls is torch.optim.RMSprop:  # torch takes it, then fails at the step
        target.load_state_dict(source.state_dict())
        p.grad = torch.randn(4, 3)
        with pytest.raises(RuntimeError):
            target.step()
        return
    with pytest.raises(ValueError, match=r"parameter 0's state '(square_avg|momentum_buffer|"
                                         r"grad_avg)' has shape \(3, 4\), the parameter \(4, 3\)"):
        target.load_state_dict(source.state_dict())
    assert_same_state(snapshot(target), before)


def test_a_state_of_another_size_is_refused_before_anything_loads():
    _, source = stepped(rt.RMSprop, (12,))
    torch.manual_seed(1)
    a, b = torch.nn.Parameter(torch.randn(5)), torch.nn.Parameter(torch.randn(12))
    target = rt.RMSprop([a, b], lr=0.01, momentum=0.9, centered=True)
    a.grad, b.grad = torch.randn(5), torch.randn(12)
    target.step()
    before = snapshot(target)
    sd = snapshot(target)
    sd["state"][0] = source.state_dict()["state"][0]  # 12 values for the 5-element parameter
    with pytest.raises(ValueError, match=r"parameter 0's state .* has shape \(12,\), "
                                         r"the parameter \(5,\)"):
        target.load_state_dict(sd)
    assert_same_state(snapshot(target), before)


@pytest.mark.parametrize("key, value, message", [
    ("square_avg", lambda t: t.long(), "has dtype torch.int64"),
    ("square_avg", lambda t: t.bool(), "has dtype torch.bool"),
    ("momentum_buffer", lambda t: t.tolist(), "is a list, not a tensor"),
    ("step", lambda t: torch.tensor(-5.0), "step count is a whole number 0 to 2"),
    ("step", lambda t: -5, "-5"),
    ("step", lambda t: 2.5, "2.5"),
    ("step", lambda t: float("nan"), "nan"),
    ("step", lambda t: 2 ** 62, str(2 ** 62)),
    ("step", lambda t: "3", "not a count"),
    ("step", lambda t: torch.ones(2), "not a count"),
])
def test_each_bad_loaded_value_is_refused_by_name(key, value, message):
    p, opt = stepped(rt.RMSprop, (4,), steps=2)
    before = snapshot(opt)
    sd = snapshot(opt)  # a state dict's per-parameter dicts are the optimizer's own
    sd["state"][0][key] = value(sd["state"][0][key])
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(sd)
    assert_same_state(snapshot(opt), before)
    p.grad = torch.ones(4)
    opt.step()  # still steps from where it was


def test_the_largest_step_count_loads_and_the_step_past_it_is_refused():
    p, opt = stepped(rt.RMSprop, (4,))
    sd = snapshot(opt)
    sd["state"][0]["step"] = _core.MAX_STEP_COUNT if isinstance(sd["state"][0]["step"], int) \
        else torch.tensor(float(_core.MAX_STEP_COUNT), dtype=torch.float64)
    opt.load_state_dict(sd)
    before = p.detach().clone()
    p.grad = torch.ones(4)
    with pytest.raises(ValueError, match="taken 9007199254740992 steps, the most"):
        opt.step()
    assert torch.equal(p.detach(), before)


def numpy_optimizer(steps=3):
    w = np.linspace(-1, 1, 5).astype(np.float32)
    opt = rmsprop.RMSprop([w], momentum=0.9)
    for t in range(steps):
        opt.step([np.sin(np.arange(5, dtype=np.float32) + t)])
    return w, opt


def test_checkpoint_paths_that_are_not_regular_files_are_refused_without_reading(tmp_path):
    w, opt = numpy_optimizer()
    opt.save(tmp_path / "good.ckpt")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, kind in ((tmp_path, "a directory"), (fifo, "a FIFO"),
                       ("/dev/zero", "a character device"),
                       ("/dev/urandom", "a character device")):
        with pytest.raises(_core.CheckpointError, match=f"{kind}, not a regular file"):
            opt.load(path)  # a FIFO without a writer: refused at once, no wait
    with pytest.raises(_core.CheckpointError, match="NUL byte at character"):
        opt.load(str(tmp_path / "good.ckpt") + "\0trailing")
    with pytest.raises(_core.CheckpointError, match="NUL byte"):
        opt.save(str(tmp_path / "new.ckpt") + "\0trailing")
    assert not (tmp_path / "new.ckpt").exists()


def test_save_replaces_only_a_regular_file(tmp_path):
    w, opt = numpy_optimizer()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "folder").mkdir()
    (tmp_path / "target").write_bytes(b"x")
    os.symlink(tmp_path / "target", tmp_path / "link")
    for path, kind in ((fifo, "a FIFO"), (tmp_path / "folder", "a directory"),
                       (tmp_path / "link", "a symbolic link")):
        with pytest.raises(_core.CheckpointError, match=f"it is {kind}, not a regular file; "
                                                        "refusing to replace it"):
            opt.save(path)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and (tmp_path / "folder").is_dir()
    assert os.path.islink(tmp_path / "link") and (tmp_path / "target").read_bytes() == b"x"
    opt.save(tmp_path / "target")  # a regular file is replaced
    assert (tmp_path / "target").stat().st_size > 1


def test_a_step_count_past_two_to_the_53_in_a_checkpoint_is_refused(tmp_path):
    w, opt = numpy_optimizer()
    opt.save(tmp_path / "good.ckpt")
    data = bytearray((tmp_path / "good.ckpt").read_bytes())
    data[24:32] = (2 ** 63 - 1).to_bytes(8, "little")  # steps_taken, the payload's first field
    data[-4:] = _crc32(bytes(data[:-4])).to_bytes(4, "little")
    (tmp_path / "big.ckpt").write_bytes(bytes(data))
    before = w.copy()
    with pytest.raises(_core.CheckpointError,
                       match="steps_taken is a step count of 9223372036854775807, past the most"):
        opt.load(tmp_path / "big.ckpt")
    assert opt.steps_taken == 3
    opt.step([np.ones(5, dtype=np.float32)])
    assert not np.array_equal(w, before)


def _crc32(data):
    import zlib
    return zlib.crc32(data) & 0xFFFFFFFF


def test_a_bad_gradient_of_a_later_parameter_changes_nothing():
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    opt = rt.RMSprop([a, b], lr=0.1, momentum=0.9)
    a.grad, b.grad = torch.ones(3), torch.ones(3)
    opt.step()
    before, a_before = snapshot(opt), a.detach().clone()
    b.grad.data = torch.ones(3, dtype=torch.float64)  # past autograd's own dtype check
    with pytest.raises(ValueError, match="group 0, parameter 1: its gradient is 3 float64"):
        opt.step()
    assert torch.equal(a.detach(), a_before)
    assert_same_state(snapshot(opt), before)  # parameter 0's step count is still 1


def test_rmsprop_step_refuses_bad_learning_rates_and_mixed_arrays_changing_nothing():
    w, g = np.ones(3, np.float32), np.ones(3, np.float32)
    state = {"square_avg": [np.zeros(3, np.float32)]}
    for lr in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=f"invalid learning rate {lr:g}"):
            rmsprop.step([w], [g], state, step=1, lr=lr)
    assert np.array_equal(w, np.ones(3)) and not state["square_avg"][0].any()
    state = {"square_avg": [np.zeros(3, np.float32), np.zeros(3, np.int32)]}
    with pytest.raises(ValueError, match="parameter 1 has dtype int32"):
        rmsprop.step([w, np.zeros(3, np.int32)], [g, np.ones(3, np.int32)], state, step=1)
    assert np.array_equal(w, np.ones(3)) and not state["square_avg"][0].any()


def test_a_damaged_option_name_is_refused_with_its_bytes_in_the_message(tmp_path):
    # Flipping the high bit of a byte in an option name (checksum recomputed, so the parser sees
    # it) made a message that is not UTF-8: the exception used to arrive with no message at all.
    w, opt = numpy_optimizer()
    opt.save(tmp_path / "good.ckpt")
    data = bytearray((tmp_path / "good.ckpt").read_bytes())
    first_name = 24 + 8 + 4 + 4 + 4  # header, steps_taken, groups, options, the name's length
    data[first_name] ^= 0x80
    data[-4:] = _crc32(bytes(data[:-4])).to_bytes(4, "little")
    (tmp_path / "bad.ckpt").write_bytes(bytes(data))
    with pytest.raises(_core.CheckpointError, match=r"group 0 options: unknown option '\\x"):
        opt.load(tmp_path / "bad.ckpt")
