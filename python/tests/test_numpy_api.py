"""rmsprop.RMSprop over NumPy arrays: the same golden trajectories as the C++ tests."""
import os

import numpy as np
import pytest

import rmsprop

GOLDEN = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden")
SCALES = [1.0, 0.5, 1e-3, 10.0, 1e-6, 3.0, 0.02, 1.0]
MASK64 = (1 << 64) - 1


def splitmix(seed):
    state = seed
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        yield ((z ^ (z >> 31)) >> 11) * 2.0**-53 * 2.0 - 1.0


def cases(name):
    case = None
    for line in open(os.path.join(GOLDEN, name)):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "case":
            case = dict(name=words[1], steps=[])
        elif words[0] == "options":
            case["options"] = dict(w.split("=", 1) for w in words[1:])
        elif words[0] in ("dtype", "seed", "n"):
            case[words[0]] = words[1]
        elif words[0][0].isdigit():
            case["steps"].append([float.fromhex(w) for w in words[1:]])
        elif words[0] == "end":
            yield case


def all_cases():
    return [c for f in ("torch.txt", "flavors.txt") for c in cases(f) if c["dtype"] == "f64"]


@pytest.mark.parametrize("case", all_cases(), ids=lambda c: c["name"])
def test_numpy_api_matches_golden_float64(case):
    rng = splitmix(int(case["seed"]))
    n = int(case["n"])
    w = np.array([next(rng) for _ in range(n)], dtype=np.float64)
    options = dict(case["options"])
    flavor = options.pop("flavor", None)
    opt = rmsprop.RMSprop([w], flavor=flavor, **options)
    for t, expected in enumerate(case["steps"], 1):
        g = np.array([SCALES[j] * next(rng) for j in range(n)], dtype=np.float64)
        if t % 2 == 0:
            g[n - 1] = 0.0
        opt.step([g])
        scale = np.abs(np.array(case["steps"])).max(axis=0)
        assert np.all(np.abs(w - expected) <= 1e-12 * scale), (case["name"], t)


def test_save_load_continue_is_bitwise(tmp_path):
    def grads(t):
        return [np.sin(np.arange(5, dtype=np.float32) + t)]

    a = np.linspace(-1, 1, 5).astype(np.float32)
    b = a.copy()
    straight = rmsprop.RMSprop([a], flavor="keras", momentum=0.9, centered=True)
    for t in range(20):
        straight.step(grads(t))
    stopped = rmsprop.RMSprop([b], flavor="keras", momentum=0.9, centered=True)
    for t in range(8):
        stopped.step(grads(t))
    stopped.save(tmp_path / "x.ckpt")
    resumed = rmsprop.RMSprop([b], flavor="tf1")  # options come back from the file
    resumed.load(tmp_path / "x.ckpt")
    assert resumed.options["eps"] == 1e-07 and resumed.steps_taken == 8
    for t in range(8, 20):
        resumed.step(grads(t))
    assert np.array_equal(a, b)


def test_bad_arrays_are_refused():
    with pytest.raises(ValueError, match="float32, float64, float16"):
        rmsprop.RMSprop([np.zeros(3, dtype=np.int64)])
    with pytest.raises(ValueError, match="not C-contiguous"):
        rmsprop.RMSprop([np.zeros((4, 4), dtype=np.float32).T])
    w = np.zeros(3, dtype=np.float32)
    opt = rmsprop.RMSprop([w])
    with pytest.raises(ValueError, match="dtype and size"):
        opt.step([np.zeros(4, dtype=np.float32)])
    with pytest.raises(ValueError, match="1 parameters"):
        opt.step([])
    with pytest.raises(FloatingPointError, match="non-finite gradient"):
        opt.step([np.array([0, np.nan, 0], dtype=np.float32)])
    with pytest.raises(OSError, match="cannot open checkpoint"):
        opt.load("/nonexistent/x.ckpt")
    assert rmsprop.simd_target() in ("baseline", "avx2", "avx512")
