#!/usr/bin/python3
"""Ours through the torch optimizer interface vs the kernel alone vs torch.optim.RMSprop.

For each parameter list — a 20-layer MLP's weights and biases, 4096 tensors of 8192, 16384
tensors of 256, and 4096 strided tensors of 8192 (each every other element of a 16384-element
tensor: a parameter that is a view) — and each variant (plain, momentum, centered+momentum; float32), one process
measures the median seconds per step of:
  - ours: rmsprop.torch.RMSprop with its defaults (non_finite="error": every gradient is
    scanned before the step), and with non_finite="propagate" (no scan: the adapter's cost);
  - kernel: the same tensors through one C++ call (_core.DLPackStepper over views made once:
    the planner and the fused kernel, no Python and no conversion per tensor),
    non_finite="propagate"; for strided parameters, on contiguous tensors of the same sizes (the
    kernel reads only contiguous memory: ours/kernel is then what staging a strided parameter
    in a contiguous copy and back costs, NOTE: [strided parameters]);
  - torch.optim.RMSprop with foreach on and off.
ours/kernel ratios and speedups over torch's faster mode are printed (or, with --json, one
JSON array). Needs the built module on PYTHONPATH (rmsprop-bench sets it).
"""
import argparse
import json
import time

import torch

import rmsprop.torch as rt
from rmsprop import _core
from rmsprop._options import resolve
from torch_rmsprop import median_step_seconds  # bench/, beside this script


PARAMETER_LISTS = ("mlp20x1024", "4096x8192", "16384x256", "4096x8192-strided")


def parameter_lists(names):
    """(name, parameters, contiguous parameters of the same sizes for the kernel alone)."""
    torch.manual_seed(0)
    if "mlp20x1024" in names:
        mlp = torch.nn.Sequential(*[torch.nn.Linear(1024, 1024) for _ in range(20)])
        params = list(mlp.parameters())
        yield "mlp20x1024", params, params
    for name, (tensors, elements) in (("4096x8192", (4096, 8192)), ("16384x256", (16384, 256))):
        if name in names:
            params = [torch.nn.Parameter(torch.rand(elements) * 2 - 1) for _ in range(tensors)]
            yield name, params, params
    if "4096x8192-strided" in names:
        params = [torch.nn.Parameter((torch.rand(8192, 2) * 2 - 1)[:, 0]) for _ in range(4096)]
        assert not params[0].is_contiguous()
        yield "4096x8192-strided", params, [torch.nn.Parameter(p.detach().clone()) for p in params]


class KernelAlone:
    """One C++ call per step over views made once: what the step costs without any
    per-tensor Python."""

    def __init__(self, params, threads, **options):
        self.options = resolve(None, dict(options, non_finite="propagate"))
        need = self.options.buffers_needed()
        view = lambda t: _core.DLPackView(t.__dlpack__())  # noqa: E731
        self.tensors = [[torch.zeros_like(p) for p in params] if used else None for used in need]
        self.params = [view(p.detach()) for p in params]
        self.grads = [view(p.grad) for p in params]
        self.state = [[view(t) for t in ts] if ts else [None] * len(params) for ts in self.tensors]
        self.stepper = _core.DLPackStepper(self.options, self.params, self.grads, self.state)
        self.threads, self.count = threads, 0

    def step(self):
        self.count += 1
        self.stepper.step(1e-3, self.count, self.threads)


def best_of(make, repeats, rounds=2):
    return min(median_step_seconds(make(), repeats) for _ in range(rounds))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--params", action="append",
                    help=f"{', '.join(PARAMETER_LISTS)} (default: all)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = args.params or PARAMETER_LISTS
    rows = []
    for name, params, contiguous in parameter_lists(names):
        for p in params:
            p.grad = torch.rand_like(p) * 2 - 1
        for p, c in zip(params, contiguous):
            c.grad = p.grad
        for variant, kwargs in (("plain", {}), ("momentum", dict(momentum=0.9)),
                                ("centered+momentum", dict(momentum=0.9, centered=True))):
            ours = lambda **o: (lambda: rt.RMSprop(params, lr=1e-3, threads=args.threads,  # noqa
                                                    **kwargs, **o))
            r = dict(params=name, tensors=len(params), elements=sum(p.numel() for p in params),
                     variant=variant, threads=args.threads)
            # interleaved, each the best of two medians: this machine is noisy
            r["kernel_seconds"] = best_of(lambda: KernelAlone(contiguous, args.threads, **kwargs),
                                          args.repeats)
            r["ours_seconds"] = best_of(ours(), args.repeats)
            r["ours_propagate_seconds"] = best_of(ours(non_finite="propagate"), args.repeats)
            r["torch_foreach_seconds"] = best_of(
                lambda: torch.optim.RMSprop(params, lr=1e-3, foreach=True, **kwargs), args.repeats)
            r["torch_single_seconds"] = best_of(
                lambda: torch.optim.RMSprop(params, lr=1e-3, foreach=False, **kwargs),
                args.repeats)
            torch_best = min(r["torch_foreach_seconds"], r["torch_single_seconds"])
            r["ours_over_kernel"] = r["ours_seconds"] / r["kernel_seconds"]
            r["ours_propagate_over_kernel"] = r["ours_propagate_seconds"] / r["kernel_seconds"]
            r["speedup_vs_torch_best"] = torch_best / r["ours_seconds"]
            rows.append(r)
    if args.json:
        print(json.dumps(rows))
        return
    print("through the torch.optim.Optimizer interface (rmsprop.torch.RMSprop) vs the kernel "
          "alone vs torch.optim.RMSprop, float32, seconds per step:")
    print(f"{'params':<17} {'variant':<18} {'kernel':>8} {'ours':>8} {'ours/k':>6} "
          f"{'ours-prop':>9} {'prop/k':>6} {'torch fe':>9} {'torch 1':>8} {'x torch':>7}")
    for r in rows:
        print(f"{r['params']:<17} {r['variant']:<18} {r['kernel_seconds']:>8.5f} "
              f"{r['ours_seconds']:>8.5f} {r['ours_over_kernel']:>6.2f} "
              f"{r['ours_propagate_seconds']:>9.5f} {r['ours_propagate_over_kernel']:>6.2f} "
              f"{r['torch_foreach_seconds']:>9.5f} {r['torch_single_seconds']:>8.5f} "
              f"{r['speedup_vs_torch_best']:>7.2f}")


if __name__ == "__main__":
    main()
