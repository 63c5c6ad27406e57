#!/usr/bin/python3
"""Ours through the torch optimizer interface vs torch.optim.RMSprop, in one process.

rmsprop.torch.RMSprop and torch.optim.RMSprop (foreach on and off) step the same parameter
lists — a 20-layer MLP's weights and biases, and 4096 tensors of 8192 — alternating
ours/torch/ours; the median seconds per step and the ratio are printed (or, with --json, one
JSON array). Needs the built module on PYTHONPATH (rmsprop-bench sets it).
"""
import argparse
import json

import torch

import rmsprop.torch as rt
from torch_rmsprop import median_step_seconds  # bench/, beside this script


def parameter_lists():
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(*[torch.nn.Linear(1024, 1024) for _ in range(20)])
    yield "mlp20x1024", list(mlp.parameters())
    yield "4096x8192", [torch.nn.Parameter(torch.rand(8192) * 2 - 1) for _ in range(4096)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name, params in parameter_lists():
        for p in params:
            p.grad = torch.rand_like(p) * 2 - 1
        elements = sum(p.numel() for p in params)
        for variant, kwargs in (("plain", {}), ("momentum", dict(momentum=0.9)),
                                ("centered+momentum", dict(momentum=0.9, centered=True))):
            make_ours = lambda: rt.RMSprop(params, lr=1e-3, threads=args.threads, **kwargs)  # noqa
            ours = [median_step_seconds(make_ours(), args.repeats)]
            foreach = median_step_seconds(
                torch.optim.RMSprop(params, lr=1e-3, foreach=True, **kwargs), args.repeats)
            ours.append(median_step_seconds(make_ours(), args.repeats))
            single = median_step_seconds(
                torch.optim.RMSprop(params, lr=1e-3, foreach=False, **kwargs), args.repeats)
            best = min(ours)
            rows.append(dict(params=name, tensors=len(params), elements=elements, variant=variant,
                             threads=args.threads, ours_seconds=best, ours_seconds_runs=ours,
                             torch_foreach_seconds=foreach, torch_single_seconds=single,
                             speedup_vs_torch_foreach=foreach / best,
                             speedup_vs_torch_single=single / best))
    if args.json:
        print(json.dumps(rows))
        return
    print("through the torch.optim.Optimizer interface (rmsprop.torch.RMSprop vs "
          "torch.optim.RMSprop), float32:")
    print(f"{'params':<12} {'tensors':>7} {'variant':<18} {'ours s':>9} {'torch fe s':>10} "
          f"{'x fe':>6} {'x single':>8}")
    for r in rows:
        print(f"{r['params']:<12} {r['tensors']:>7} {r['variant']:<18} {r['ours_seconds']:>9.5f} "
              f"{r['torch_foreach_seconds']:>10.5f} {r['speedup_vs_torch_foreach']:>6.2f} "
              f"{r['speedup_vs_torch_single']:>8.2f}")


if __name__ == "__main__":
    main()
