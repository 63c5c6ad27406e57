#!/usr/bin/python3
"""PyTorch's side of rmsprop-bench: median seconds per torch.optim.RMSprop step.

Prints one line per case, "<variant>/<shape>/<dtype>/<foreach|single> <seconds>". Run by
rmsprop-bench with Debian's /usr/bin/python3 (python3-torch, CPU).
"""
import argparse
import time

import torch

VARIANTS = {  # our variant name -> torch.optim.RMSprop arguments (no bias correction in torch)
    "plain": dict(),
    "momentum": dict(momentum=0.9),
    "centered+momentum": dict(momentum=0.9, centered=True),
}


def median_step_seconds(opt, repeats):
    opt.step()  # state is created here
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--shape", action="append", required=True, help="NAME:TENSORSxELEMENTS")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for shape in args.shape:
        name, dims = shape.split(":")
        tensors, elements = (int(x) for x in dims.split("x"))
        for dtype_name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
            torch.manual_seed(0)
            params = [(torch.rand(elements) * 2 - 1).to(dtype).requires_grad_()
                      for _ in range(tensors)]
            for p in params:
                p.grad = (torch.rand(elements) * 2 - 1).to(dtype)
            for variant, kwargs in VARIANTS.items():
                for mode, foreach in (("foreach", True), ("single", False)):
                    opt = torch.optim.RMSprop(params, lr=0.01, foreach=foreach, **kwargs)
                    seconds = median_step_seconds(opt, args.repeats)
                    print(f"{variant}/{name}/{dtype_name}/{mode} {seconds:.6g}", flush=True)
                    del opt
            del params


if __name__ == "__main__":
    main()
