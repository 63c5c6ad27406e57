#!/usr/bin/python3
"""Records the golden trajectories that tests/golden_test.cpp checks the C++ optimizer against.

Run with Debian's Python (it has torch and numpy):  /usr/bin/python3 tests/golden/generate.py

* torch.txt: real PyTorch (`torch.optim.RMSprop`, and `SGD`, `Adagrad`, `Adam` for the
  baselines) over a matrix of options, float32 and float64.
* flavors.txt: every other flavor, computed here in NumPy from its formula as the framework's
  own source writes it (see docs/flavors.md), in that framework's order of operations.
  This is written independently of the C++ rule on purpose: it is a second reading of the
  frameworks, not a copy of ours.

Every case: one parameter of N elements, 200 steps of gradients from a splitmix64 stream that
the C++ test regenerates bit for bit, the parameter after each step in hex floats.
"""
import itertools
import os
import sys

import numpy as np
import torch

STEPS = 200
N = 8
# Per-element gradient scales: ordinary, tiny (eps matters), large, zero on even steps.
SCALES = [1.0, 0.5, 1e-3, 10.0, 1e-6, 3.0, 0.02, 1.0]
MASK64 = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def uniform(self):
        """A double in [-1, 1), exact: 53 random bits."""
        return (self.next() >> 11) * 2.0**-53 * 2.0 - 1.0


def trajectory_inputs(seed, dtype):
    rng = SplitMix64(seed)
    init = np.array([rng.uniform() for _ in range(N)], dtype=dtype)
    grads = []
    for t in range(1, STEPS + 1):
        g = [SCALES[j] * rng.uniform() for j in range(N)]
        if t % 2 == 0:
            g[N - 1] = 0.0
        grads.append(np.array(g, dtype=dtype))
    return init, grads


# ---------------------------------------------------------------------------------------------
# PyTorch, the real thing.

def torch_trajectory(make_optimizer, init, grads):
    p = torch.nn.Parameter(torch.from_numpy(init.copy()))
    opt = make_optimizer([p])
    out = []
    for g in grads:
        p.grad = torch.from_numpy(g.copy())
        opt.step()
        out.append(p.detach().numpy().copy())
    return out


def torch_cases():
    """(name, our options, factory) for torch.optim.RMSprop over a covering matrix."""
    cases = []
    lrs, alphas, epss = [1e-2, 1e-3], [0.99, 0.9], [1e-8, 1e-3]
    for k, (wd, mom, centered, maximize) in enumerate(
            itertools.product([0.0, 0.1], [0.0, 0.9], [False, True], [False, True])):
        lr, alpha, eps = lrs[k % 2], alphas[(k // 2) % 2], epss[(k // 4) % 2]
        kw = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=wd, momentum=mom,
                  centered=centered, maximize=maximize)
        ours = dict(flavor="torch", **kw)
        cases.append((f"rmsprop{k}", ours,
                      lambda ps, kw=kw: torch.optim.RMSprop(ps, **kw)))
    # The baselines, from torch too.
    cases.append(("sgd", dict(algorithm="sgd", lr=0.05),
                  lambda ps: torch.optim.SGD(ps, lr=0.05)))
    cases.append(("sgd_momentum_wd", dict(algorithm="sgd", lr=0.01, momentum=0.9, weight_decay=0.01),
                  lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9, weight_decay=0.01)))
    cases.append(("sgd_nesterov", dict(algorithm="sgd", lr=0.01, momentum=0.9, nesterov=True),
                  lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9, nesterov=True)))
    cases.append(("adagrad", dict(algorithm="adagrad", lr=0.1, eps=1e-10),
                  lambda ps: torch.optim.Adagrad(ps, lr=0.1)))
    cases.append(("adagrad_init_wd", dict(algorithm="adagrad", lr=0.05, eps=1e-10,
                                          initial_accumulator_value=0.1, weight_decay=0.01),
                  lambda ps: torch.optim.Adagrad(ps, lr=0.05, initial_accumulator_value=0.1,
                                                 weight_decay=0.01)))
    cases.append(("adam", dict(algorithm="adam", lr=1e-2, grad_avg_decay=0.9, alpha=0.999,
                               eps=1e-8, bias_correction=True),
                  lambda ps: torch.optim.Adam(ps, lr=1e-2)))
    return cases


# ---------------------------------------------------------------------------------------------
# The other flavors, each from its framework's source, in its order of operations.
# `s(x)` makes a scalar of the trajectory's dtype, as the framework would use.

def clamp(variance):
    """Our one documented deviation (docs/flavors.md): v - m^2 is clamped at 0 where the frameworks
    let it round negative into a NaN. It changes no finite result."""
    return np.maximum(variance, variance.dtype.type(0))


def tf1_step(s, o, st, p, g):
    """tensorflow/core/kernels/training_ops.cc ApplyRMSProp / ApplyCenteredRMSProp."""
    rho, eps, lr, mom = s(o["alpha"]), s(o["eps"]), s(o["lr"]), s(o["momentum"])
    st["v"] += (g * g - st["v"]) * (s(1) - rho)
    if o.get("centered"):
        st["m"] += (g - st["m"]) * (s(1) - rho)
        denom = clamp(st["v"] - st["m"] * st["m"]) + eps
    else:
        denom = st["v"] + eps
    st["b"] = st["b"] * mom + lr * g / np.sqrt(denom)
    return p - st["b"]


def keras_step(s, o, st, p, g):
    """keras/src/optimizers/rmsprop.py + base_optimizer.py (decoupled weight decay first)."""
    rho, eps, lr, mom, wd = s(o["alpha"]), s(o["eps"]), s(o["lr"]), s(o["momentum"]), s(o.get("weight_decay", 0))
    if wd != 0:
        p = p - p * wd * lr
    st["v"] = rho * st["v"] + (s(1) - rho) * np.square(g)
    denominator = st["v"]
    if o.get("centered"):
        st["m"] = rho * st["m"] + (s(1) - rho) * g
        denominator = clamp(st["v"] - np.square(st["m"]))
    increment = lr * g / np.sqrt(denominator + eps)
    if mom > 0:
        st["b"] = mom * st["b"] + increment
        return p - st["b"]
    return p - increment


def optax_step(s, o, st, p, g):
    """optax/_src/alias.py rmsprop = chain(scale_by_rms|scale_by_stddev, scale_by_lr, trace)."""
    rho, eps, lr = s(o["alpha"]), s(o["eps"]), s(o["lr"])
    st["t"] += 1
    st["v"] = (s(1) - rho) * (g * g) + rho * st["v"]
    v_hat, m_hat = st["v"], np.zeros_like(g)
    if o.get("centered"):
        st["m"] = (s(1) - rho) * g + rho * st["m"]
        m_hat = st["m"]
    if o.get("bias_correction"):
        v_hat = v_hat / (s(1) - rho ** s(st["t"]))
        if o.get("centered"):
            m_hat = m_hat / (s(1) - rho ** s(st["t"]))
    var = clamp(v_hat - m_hat * m_hat)
    if o.get("eps_in_sqrt", True):
        scale = s(1) / np.sqrt(var + eps)
    else:
        scale = s(1) / (np.sqrt(var) + eps)
    u = -lr * (g * scale)
    mom = o.get("momentum", 0)
    if mom:
        st["b"] = u + s(mom) * st["b"]
        u = u + s(mom) * st["b"] if o.get("nesterov") else st["b"]
    return p + u


def lasagne_step(s, o, st, p, g):
    """lasagne/updates.py rmsprop (+ apply_momentum: lr inside the velocity)."""
    rho, eps, lr = s(o["alpha"]), s(o["eps"]), s(o["lr"])
    st["v"] = rho * st["v"] + (s(1) - rho) * g ** 2
    update = -lr * g / np.sqrt(st["v"] + eps)
    mom = o.get("momentum", 0)
    if mom:
        st["b"] = s(mom) * st["b"] + update
        return p + st["b"]
    return p + update


def caffe_step(s, o, st, p, g):
    """caffe/src/caffe/solvers/rmsprop_solver.cpp (L2 regularization in sgd_solver.cpp)."""
    rho, delta, lr, wd = s(o["alpha"]), s(o["eps"]), s(o["lr"]), s(o.get("weight_decay", 0))
    g = g + wd * p
    st["v"] = (s(1) - rho) * (g * g) + rho * st["v"]
    return p - lr * (g / (np.sqrt(st["v"]) + delta))


def ensmallen_step(s, o, st, p, g):
    """ensmallen_bits/rmsprop/rmsprop_update.hpp."""
    alpha, eps, lr = s(o["alpha"]), s(o["eps"]), s(o["lr"])
    st["v"] *= alpha
    st["v"] += (s(1) - alpha) * (g * g)
    return p - lr * g / (np.sqrt(st["v"]) + eps)


def timm_tf_step(s, o, st, p, g):
    """timm/optim/rmsprop_tf.py RMSpropTF."""
    rho, eps, lr, wd = s(o["alpha"]), s(o["eps"]), s(o["lr"]), s(o.get("weight_decay", 0))
    if wd != 0:
        if o.get("decoupled_weight_decay"):
            p = p * (s(1) - lr * wd)
        else:
            g = g + wd * p
    st["v"] += (s(1) - rho) * (g * g - st["v"])
    if o.get("centered"):
        st["m"] += (s(1) - rho) * (g - st["m"])
        avg = np.sqrt(clamp(st["v"] - st["m"] * st["m"]) + eps)
    else:
        avg = np.sqrt(st["v"] + eps)
    mom = s(o.get("momentum", 0))
    if mom > 0:
        if o.get("lr_in_momentum", True):
            st["b"] = st["b"] * mom + lr * (g / avg)
            return p - st["b"]
        st["b"] = st["b"] * mom + g / avg
        return p - lr * st["b"]
    return p - lr * (g / avg)


def hinton_step(s, o, st, p, g):
    """Lecture 6e: MeanSquare = 0.9 MeanSquare + 0.1 g^2; divide by its square root."""
    st["v"] = s(0.9) * st["v"] + s(0.1) * g * g
    return p - s(o["lr"]) * g / np.sqrt(st["v"] + s(o["eps"]))


FLAVOR_STEPS = dict(tf1=tf1_step, keras=keras_step, optax=optax_step, lasagne=lasagne_step,
                    caffe=caffe_step, ensmallen=ensmallen_step, timm_tf=timm_tf_step,
                    hinton=hinton_step)
# v0 by flavor (the others start every buffer at 0).
INITIAL_V = dict(tf1=1.0, timm_tf=1.0)
# Each flavor's preset values for the fields its formula reads (the C++ gets only `flavor=`
# plus the overrides, so these also check the presets).
DEFAULTS = dict(
    tf1=dict(lr=1e-3, alpha=0.9, eps=1e-10, momentum=0.0),
    keras=dict(lr=1e-3, alpha=0.9, eps=1e-7, momentum=0.0),
    optax=dict(lr=1e-3, alpha=0.9, eps=1e-8),
    lasagne=dict(lr=1.0, alpha=0.9, eps=1e-6),
    caffe=dict(lr=1e-2, alpha=0.99, eps=1e-8),
    ensmallen=dict(lr=1e-2, alpha=0.99, eps=1e-8),
    timm_tf=dict(lr=1e-2, alpha=0.9, eps=1e-10),
    hinton=dict(lr=1e-3, alpha=0.9, eps=1e-8),
)
# (flavor, overrides) — overrides use our option names.
FLAVOR_CASES = [
    ("tf1", {}), ("tf1", dict(lr=0.01)), ("tf1", dict(centered=True, momentum=0.9, eps=1e-3)),
    ("tf1", dict(momentum=0.5, lr=0.016, eps=1e-3)),
    ("keras", {}), ("keras", dict(lr=0.01, momentum=0.9)),
    ("keras", dict(centered=True, weight_decay=0.05, lr=0.01)),
    ("optax", {}), ("optax", dict(lr=0.01, centered=True)), ("optax", dict(lr=0.01, bias_correction=True)),
    ("optax", dict(lr=0.01, momentum=0.9, nesterov=True)),
    ("optax", dict(lr=0.01, eps_in_sqrt=False, bias_correction=True, momentum=0.5)),
    ("lasagne", dict(lr=0.01)), ("lasagne", dict(lr=0.01, momentum=0.9)),
    ("caffe", {}), ("caffe", dict(weight_decay=0.05)),
    ("ensmallen", {}), ("ensmallen", dict(lr=0.001, alpha=0.9)),
    ("timm_tf", {}), ("timm_tf", dict(momentum=0.9, weight_decay=0.01)),
    ("timm_tf", dict(momentum=0.9, lr_in_momentum=False, centered=True)),
    ("timm_tf", dict(weight_decay=0.05, decoupled_weight_decay=True)),
    ("hinton", {}), ("hinton", dict(lr=0.01)),
]


def numpy_trajectory(flavor, options, init, grads):
    dtype = init.dtype.type
    s = lambda x: dtype(x)
    st = dict(v=np.full(N, INITIAL_V.get(flavor, 0.0), dtype=init.dtype),
              m=np.zeros(N, dtype=init.dtype), b=np.zeros(N, dtype=init.dtype), t=0)
    p, out = init.copy(), []
    for g in grads:
        p = FLAVOR_STEPS[flavor](s, options, st, p, g).astype(init.dtype)
        out.append(p.copy())
    return out


# ---------------------------------------------------------------------------------------------

def fmt(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else repr(value)


def write_case(f, name, ours, dtype_name, seed, init, traj):
    f.write(f"case {name}/{dtype_name}\n")
    f.write("options " + " ".join(f"{k}={fmt(v)}" for k, v in ours.items()) + "\n")
    f.write(f"dtype {dtype_name}\nseed {seed}\nn {N}\nsteps {len(traj)}\n")
    f.write("init " + " ".join(float(x).hex() for x in init) + "\n")
    for t, p in enumerate(traj, 1):
        f.write(f"{t} " + " ".join(float(x).hex() for x in p) + "\n")
    f.write("end\n")


def main():
    # With --out DIR the files go to DIR (the reproducibility test compares them with ours).
    here = os.path.dirname(os.path.abspath(__file__))
    if len(sys.argv) == 3 and sys.argv[1] == "--out":
        here = sys.argv[2]
    torch.set_num_threads(1)
    dtypes = [("f32", np.float32), ("f64", np.float64)]
    with open(os.path.join(here, "torch.txt"), "w") as f:
        f.write(f"# torch {torch.__version__}, generated by tests/golden/generate.py\n")
        for k, (name, ours, make) in enumerate(torch_cases()):
            for dtype_name, dtype in dtypes:
                seed = 1000 + k
                init, grads = trajectory_inputs(seed, dtype)
                write_case(f, name, ours, dtype_name, seed, init,
                           torch_trajectory(make, init, grads))
    with open(os.path.join(here, "flavors.txt"), "w") as f:
        f.write(f"# numpy {np.__version__}, generated by tests/golden/generate.py\n")
        for k, (flavor, overrides) in enumerate(FLAVOR_CASES):
            options = dict(DEFAULTS[flavor], **overrides)
            for dtype_name, dtype in dtypes:
                seed = 5000 + k
                init, grads = trajectory_inputs(seed, dtype)
                name = flavor + "".join(f",{k}={fmt(v)}" for k, v in overrides.items())
                write_case(f, name, dict(flavor=flavor, **overrides), dtype_name, seed, init,
                           numpy_trajectory(flavor, options, init, grads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
