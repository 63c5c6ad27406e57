#!/usr/bin/python3
"""What 8-bit optimizer state costs in training quality, beside bfloat16 state (docs/precision.md).

    PYTHONPATH=<build>/python /usr/bin/python3 bench/state8_quality.py [--steps 1000]
        [--cli <build>/apps/cli/rmsprop]

1. A real model: an MLP 784-256-10 (ReLU) on Fashion-MNIST, minibatches of 64 in one fixed
   order, rmsprop.torch.RMSprop with float32, bfloat16 and int8 state (state8_min_size's
   default: the 784x256 weight gets 8-bit state, the small tensors keep float32), plain and
   centered + momentum. After --steps steps: the parameters' relative distance from the
   float32-state run (||θ − θ32|| / ||θ32||), and test accuracy. For scale, the distance that
   float32 rounding makes: the float32 run again with its first gradient's elements each one
   ulp larger (training amplifies any difference; a state dtype's distance means little
   below it).
2. With --cli: `rmsprop train` (the default Fashion-MNIST run, same seed) with
   --state-dtype float32 and int8: the test accuracy each prints.
"""
import argparse
import gzip
import re
import subprocess
import sys

import numpy as np
import torch

import rmsprop.torch as rt

ROOT = "/usr/share/datasets/fashion-mnist/"


def idx(name, offset):
    return np.frombuffer(gzip.open(ROOT + name).read(), np.uint8, offset=offset)


def data():
    def images(name):
        return torch.tensor(idx(name, 16).reshape(-1, 784) / 255.0, dtype=torch.float32)

    def labels(name):
        return torch.tensor(idx(name, 8).astype(np.int64))

    return (images("train-images-idx3-ubyte.gz"), labels("train-labels-idx1-ubyte.gz"),
            images("t10k-images-idx3-ubyte.gz"), labels("t10k-labels-idx1-ubyte.gz"))


def train(options, steps, x, y, x_test, y_test, nudge=False):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 10))
    opt = rt.RMSprop(model.parameters(), **options)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(1))
    loss_fn = torch.nn.CrossEntropyLoss()
    for step in range(steps):
        batch = order[(step * 64) % len(x):][:64]
        opt.zero_grad()
        loss_fn(model(x[batch]), y[batch]).backward()
        if nudge and step == 0:  # every element of the first gradient one ulp up
            w = model[0].weight.grad
            w.copy_(torch.nextafter(w, torch.full_like(w, float("inf"))))
        opt.step()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]), accuracy


def cli_accuracy(cli, state_dtype):
    out = subprocess.run([cli, "train", "--state-dtype", state_dtype], capture_output=True,
                         text=True, check=True).stdout
    found = re.findall(r"test accuracy[^0-9]*([0-9.]+)", out)
    return found[-1] if found else out.strip().splitlines()[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--cli", help="the rmsprop CLI: also compare its default training run")
    args = ap.parse_args()
    torch.set_num_threads(1)
    x, y, x_test, y_test = data()
    print(f"MLP 784-256-10, Fashion-MNIST, {args.steps} steps of 64, one fixed order")
    print(f"{'variant':<20}{'state':<10}{'|θ − θ32| / |θ32|':>20}{'test accuracy':>15}")
    for name, options in (("plain", dict(lr=1e-3, alpha=0.9)),
                          ("centered+momentum", dict(lr=1e-3, alpha=0.9, centered=True,
                                                     momentum=0.9))):
        reference, accuracy32 = train(dict(options, state_dtype="float32"), args.steps, x, y,
                                      x_test, y_test)
        nudged, accuracy_n = train(dict(options, state_dtype="float32"), args.steps, x, y,
                                   x_test, y_test, nudge=True)
        rows = [("float32", 0.0, accuracy32),
                ("float32+1ulp", ((nudged - reference).norm() / reference.norm()).item(),
                 accuracy_n)]
        for state in ("bfloat16", "int8"):
            theta, accuracy = train(dict(options, state_dtype=state), args.steps, x, y, x_test,
                                    y_test)
            rows.append((state, ((theta - reference).norm() / reference.norm()).item(),
                         accuracy))
        for state, distance, accuracy in rows:
            print(f"{name:<20}{state:<14}{distance:>16.2e}{100 * accuracy:>14.2f}%", flush=True)
    if args.cli:
        print("\n`rmsprop train` (default run), test accuracy:")
        for state in ("float32", "int8"):
            print(f"  --state-dtype {state:<9} {cli_accuracy(args.cli, state)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
