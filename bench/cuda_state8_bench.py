#!/usr/bin/env python3
"""8-bit optimizer state on the GPU: state bytes, peak memory and step time beside torch.

    PYTHONPATH=build/python python3 bench/cuda_state8_bench.py [--elements N] [--repeats N]

One tensor of N (default 10^8) float32 parameters with its gradient on the GPU, plain and
centered + momentum RMSprop, for torch.optim.RMSprop (foreach) and ours with float32, bfloat16
and int8 state. For each: the optimizer state's bytes per parameter (counted from the state
tensors it holds: codes and block scales for int8), the peak device memory from the optimizer's
making through its first step (torch.cuda.max_memory_allocated: parameters, gradients, state
and whatever the step allocates on the side), and the step's time (median of CUDA-event
timings, eager; ours with non_finite="propagate" so that both sides time the step alone), with
torch's time over ours. Every figure comes from this run; nothing is assumed.
"""
import argparse
import sys

import torch

import rmsprop
import rmsprop.torch as rt
from cuda_torch_bench import median_ms  # beside this file

MIB = 1 << 20


def state_bytes_per_parameter(opt, param):
    held = [v for v in opt.state[param].values() if torch.is_tensor(v) and v.numel() > 1]
    return sum(v.numel() * v.element_size() for v in held) / param.numel()


def measure(make, param, repeats):
    """(state bytes per parameter, peak MiB over making + first step, median ms per step)"""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    opt = make([param])
    opt.step()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / MIB
    held = state_bytes_per_parameter(opt, param)
    ms = median_ms(opt.step, repeats)
    del opt
    torch.cuda.empty_cache()
    return held, peak, ms


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--elements", type=int, default=10**8)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    if args.elements < 1 or args.repeats < 1:
        sys.exit(f"cuda_state8_bench: --elements {args.elements} and --repeats {args.repeats} "
                 "must be positive")
    if not torch.cuda.is_available() or not rmsprop.cuda_available():
        sys.exit("cuda_state8_bench: needs a CUDA GPU for torch and rmsprop's CUDA backend")
    g = torch.Generator(device="cuda").manual_seed(0)
    param = torch.nn.Parameter(torch.randn(args.elements, device="cuda", generator=g))
    param.grad = torch.randn(args.elements, device="cuda", generator=g)
    base = torch.cuda.memory_allocated() / MIB
    print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}; {args.elements} "
          f"float32 parameters + gradients: {base:.0f} MiB; {args.repeats} repeats")
    print(f"{'variant':<10}{'optimizer':<16}{'state B/param':>14}{'peak MiB':>10}"
          f"{'over p+g':>10}{'ms/step':>9}{'torch/ours':>11}")
    variants = {"plain": {}, "c+m": dict(momentum=0.9, centered=True)}
    for name, options in variants.items():
        lr = 1e-4
        rows = [("torch foreach",
                 lambda ps: torch.optim.RMSprop(ps, lr=lr, foreach=True, **options))]
        for state in ("float32", "bfloat16", "int8"):
            rows.append((f"ours {state}", lambda ps, state=state: rt.RMSprop(
                ps, lr=lr, state_dtype=state, non_finite="propagate", **options)))
        torch_ms = None
        for label, make in rows:
            held, peak, ms = measure(make, param, args.repeats)
            torch_ms = torch_ms or ms
            print(f"{name:<10}{label:<16}{held:14.3f}{peak:10.0f}{peak - base:10.0f}"
                  f"{ms:9.3f}{torch_ms / ms:10.2f}x", flush=True)


if __name__ == "__main__":
    main()
