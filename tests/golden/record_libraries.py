#!/usr/bin/python3
"""Records real optax `rmsprop` and real timm `RMSpropTF` trajectories, and compares ours with them.

    python3 tests/golden/record_libraries.py OUT.txt [--stand-in]

The cases cover each library's knobs (optax: decay, eps, eps_in_sqrt, centered, momentum,
nesterov, bias_correction, initial_scale; timm: alpha, eps, momentum, centered, weight_decay,
decoupled_decay, lr_in_momentum), float64 and float32, on generate.py's gradient streams (one
parameter of 8 elements, 200 steps, the C++ test regenerates them bit for bit). OUT.txt has
generate.py's format: committed as tests/golden/libraries.txt, tests/golden_test.cpp checks
the C++ optimizer against it with the tolerances of NOTE: [golden tolerances].

Where `rmsprop` imports (PYTHONPATH=<build>/python), the script also runs our optimizer on the
same inputs and prints the table of errors: float64, the largest error relative to each
element's scale (its largest |θ|); float32, in ulps of that scale (2^-23 relative), beside the
library's own float32-to-float64 distance; and the verdict of golden_test.cpp's rule.

A library that does not import is replaced by its stand-in (generate.py's independent
transcription of its source), and the file says so in its header and case names; --stand-in
forces that (to dry-run the script). The real libraries are on the GPU machine
(scripts/gpu-check.sh runs this there, on the CPU: JAX_PLATFORMS=cpu).
"""
import inspect
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generate  # noqa: E402  (the gradient streams, the file format, the stand-ins)

# (our overrides) per case; each library's flavor supplies the rest (docs/flavors.md).
OPTAX_CASES = [
    {},
    dict(lr=0.01, alpha=0.95, eps=1e-6),
    dict(lr=0.01, eps_in_sqrt=False),
    dict(lr=0.01, centered=True),
    dict(lr=0.01, centered=True, eps_in_sqrt=False),
    dict(lr=0.01, momentum=0.9),
    dict(lr=0.01, momentum=0.9, nesterov=True),
    dict(lr=0.01, bias_correction=True),
    dict(lr=0.01, eps_in_sqrt=False, bias_correction=True, momentum=0.5),
    dict(lr=0.01, initial_accumulator_value=0.1),
    dict(lr=0.01, initial_accumulator_value=1.0, centered=True, momentum=0.9, nesterov=True),
]
TIMM_CASES = [
    {},
    dict(lr=0.001, alpha=0.99, eps=1e-8),
    dict(momentum=0.9),
    dict(momentum=0.9, lr_in_momentum=False),
    dict(centered=True),
    dict(centered=True, momentum=0.9, lr_in_momentum=False),
    dict(weight_decay=0.01, momentum=0.9),
    dict(weight_decay=0.05, decoupled_weight_decay=True),
    dict(weight_decay=0.05, decoupled_weight_decay=True, momentum=0.9, centered=True),
]
SEED_BASE = dict(optax=9000, timm_tf=9100)


def settings(flavor, overrides):
    """Every value the library needs: the flavor's preset, the case's overrides."""
    o = dict(generate.DEFAULTS[flavor], momentum=0.0, weight_decay=0.0,
             initial_accumulator_value=generate.INITIAL_V.get(flavor, 0.0))
    o.update(overrides)
    return o


# --- optax ------------------------------------------------------------------------------------

def real_optax():
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax
    accepted = set(inspect.signature(optax.rmsprop).parameters)

    def trajectory(o, init, grads):
        kwargs = dict(learning_rate=o["lr"], decay=o["alpha"], eps=o["eps"],
                      initial_scale=o["initial_accumulator_value"],
                      eps_in_sqrt=o.get("eps_in_sqrt", True), centered=o.get("centered", False),
                      momentum=o["momentum"] or None, nesterov=o.get("nesterov", False),
                      bias_correction=o.get("bias_correction", False))
        missing = [k for k, v in kwargs.items() if k not in accepted and v]
        if missing:
            return None, f"optax {optax.__version__} has no {', '.join(missing)}"
        tx = optax.rmsprop(**{k: v for k, v in kwargs.items() if k in accepted})
        params = jnp.asarray(init)
        state = tx.init(params)
        out = []
        for g in grads:
            updates, state = tx.update(jnp.asarray(g), state, params)
            params = optax.apply_updates(params, updates)
            out.append(np.asarray(params).astype(init.dtype))
        return out, None

    return f"optax {optax.__version__} (jax {jax.__version__}, {jax.default_backend()})", trajectory


# --- timm -------------------------------------------------------------------------------------

def real_timm():
    import timm
    import torch
    from timm.optim import RMSpropTF

    def trajectory(o, init, grads):
        p = torch.nn.Parameter(torch.from_numpy(init.copy()))
        opt = RMSpropTF([p], lr=o["lr"], alpha=o["alpha"], eps=o["eps"],
                        weight_decay=o["weight_decay"], momentum=o["momentum"],
                        centered=o.get("centered", False),
                        decoupled_decay=o.get("decoupled_weight_decay", False),
                        lr_in_momentum=o.get("lr_in_momentum", True))
        out = []
        for g in grads:
            p.grad = torch.from_numpy(g.copy())
            opt.step()
            out.append(p.detach().numpy().copy())
        return out, None

    return f"timm {timm.__version__} (torch {torch.__version__}, CPU)", trajectory


# --- stand-ins: generate.py's transcriptions of each library's source -----------------------

def stand_in(flavor):
    step = generate.FLAVOR_STEPS[flavor]

    def trajectory(o, init, grads):
        s = init.dtype.type
        st = dict(v=np.full(init.size, o["initial_accumulator_value"], dtype=init.dtype),
                  m=np.zeros_like(init), b=np.zeros_like(init), t=0)
        p, out = init.copy(), []
        for g in grads:
            p = step(s, o, st, p, g).astype(init.dtype)
            out.append(p.copy())
        return out, None

    return f"stand-in: tests/golden/generate.py {step.__name__}", trajectory


def library(flavor, force_stand_in):
    if not force_stand_in:
        try:
            return (real_optax if flavor == "optax" else real_timm)()
        except ImportError as e:
            print(f"{flavor}: {e}; using the stand-in", file=sys.stderr)
    return stand_in(flavor)


# --- ours and the comparison (golden_test.cpp's rule) ----------------------------------------

def ours_trajectory(flavor, overrides, init, grads):
    import rmsprop
    p = init.copy()
    opt = rmsprop.RMSprop([p], flavor=flavor, **overrides)
    out = []
    for g in grads:
        opt.step([g.copy()])
        out.append(p.copy())
    return out


def scales(traj):
    return np.max(np.abs(np.array(traj, dtype=np.float64)), axis=0)


def per_element(a, b, scale):
    """max over steps of |a − b| / scale, per element."""
    return np.max(np.abs(np.array(a, np.float64) - np.array(b, np.float64)), axis=0) / scale


def verdict(f64_error, f32_vs_lib, f32_vs_exact, lib_own):
    """NOTE: [golden tolerances]: float64 ≤ 1e-12; float32 ≤ 8 ulps of scale from the library,
    or ≤ 8 + 4 × the library's own float32 error from the exact (float64) trajectory."""
    ulp = 2.0 ** -23
    f32_ok = all(v <= 8 * ulp or e <= (8 + 4 * own / ulp) * ulp
                 for v, e, own in zip(f32_vs_lib, f32_vs_exact, lib_own))
    return "ok" if f64_error <= 1e-12 and f32_ok else "MISMATCH"


def main():
    args = [a for a in sys.argv[1:] if a != "--stand-in"]
    if len(args) != 1:
        sys.exit(__doc__.splitlines()[2].strip())
    force = "--stand-in" in sys.argv
    try:
        import rmsprop  # noqa: F401
        compare = True
    except ImportError:
        compare = False
        print("rmsprop does not import (PYTHONPATH=<build>/python): recording only",
              file=sys.stderr)
    rows, failures = [], 0
    with open(args[0], "w") as f:
        for flavor, cases in (("optax", OPTAX_CASES), ("timm_tf", TIMM_CASES)):
            source, run = library(flavor, force)
            real = not source.startswith("stand-in")
            f.write(f"# {flavor}: {source}; generated by tests/golden/record_libraries.py\n")
            for k, overrides in enumerate(cases):
                o = settings(flavor, overrides)
                seed = SEED_BASE[flavor] + k
                name = (flavor if real else flavor + "-standin") + "".join(
                    f",{key}={generate.fmt(v)}" for key, v in overrides.items())
                trajectories = {}
                for dtype_name, dtype in (("f64", np.float64), ("f32", np.float32)):
                    init, grads = generate.trajectory_inputs(seed, dtype)
                    traj, why = run(o, init, grads)
                    if traj is None:
                        rows.append((name, why, "", "", "skipped"))
                        break
                    generate.write_case(f, name, dict(flavor=flavor, **overrides), dtype_name,
                                        seed, init, traj)
                    trajectories[dtype_name] = (init, grads, traj)
                if len(trajectories) < 2 or not compare:
                    continue
                i64, g64, lib64 = trajectories["f64"]
                i32, g32, lib32 = trajectories["f32"]
                ours64 = ours_trajectory(flavor, overrides, i64, g64)
                ours32 = ours_trajectory(flavor, overrides, i32, g32)
                f64_error = float(np.max(per_element(ours64, lib64, scales(lib64))))
                s32 = scales(lib32)
                vs_lib = per_element(ours32, lib32, s32)
                vs_exact = per_element(ours32, lib64, s32)
                own = per_element(lib32, lib64, s32)
                v = verdict(f64_error, vs_lib, vs_exact, own)
                failures += v != "ok"
                ulp = 2.0 ** -23
                rows.append((name, f"{f64_error:.2e}", f"{np.max(vs_lib) / ulp:.2f}",
                             f"{np.max(own) / ulp:.2f}", v))
    if rows:
        print(f"{'case':<90}{'f64 rel':>10}{'f32 ulps':>10}{'lib f32':>9}  verdict")
        for r in rows:
            print(f"{r[0]:<90}{r[1]:>10}{r[2]:>10}{r[3]:>9}  {r[4]}")
        print("f64 rel: max |ours − library| / the element's largest |θ|, float64, 200 steps; "
              "f32 ulps: the same in float32, in ulps of that scale; lib f32: the library's own "
              "float32 distance from its float64 trajectory")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
