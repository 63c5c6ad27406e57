#!/usr/bin/python3
"""Seconds per epoch of the seed's Fashion-MNIST training, three ways, alternated in one run:
`rmsprop train` with our optimizer, the same program with torch::optim::RMSprop
(--backend torch), and a plain Python PyTorch script (fashion_mnist_torch.py).

  bench/epoch_bench.py [--cli build/apps/rmsprop] [--epochs 3] [--rounds 3] [--threads 2]

Reports the median over rounds of each program's median epoch time, the ratios, and the
optimizer's share of the training time in the CLI's runs (its own timing of opt.step()).
All three run with one OpenBLAS thread (the CLI sets it itself, NOTE: [one BLAS thread]; the
Python script gets OPENBLAS_NUM_THREADS=1), so that the comparison is of the programs.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def cli_epochs(cli, backend, epochs, threads, out):
    flags = ["--flavor", "torch", "--lr", "1e-3", "--alpha", "0.9", "--eps", "1e-8"] \
        if backend == "torch" else []
    subprocess.run([cli, "train", "--epochs", str(epochs), "--threads", str(threads), "--no-plots",
                    "--no-progress", "--backend", backend, *flags, "--out", out],
                   check=True, capture_output=True)
    with open(os.path.join(out, "metrics.json")) as f:
        doc = json.load(f)
    seconds = [e["seconds"] for e in doc["epochs"]]
    return statistics.median(seconds), doc["optimizer_share"]


def python_epochs(epochs, threads):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    p = subprocess.run([sys.executable, os.path.join(HERE, "fashion_mnist_torch.py"), str(epochs),
                        str(threads)], check=True, capture_output=True, text=True, env=env)
    return statistics.median(float(line.split()[2]) for line in p.stdout.splitlines())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cli", default="build/apps/rmsprop")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    times = {"ours": [], "torch": [], "python": []}
    shares = {"ours": [], "torch": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            for backend, key in (("rmsprop", "ours"), ("torch", "torch")):
                s, share = cli_epochs(a.cli, backend, a.epochs, a.threads, f"{tmp}/{key}{r}")
                times[key].append(s)
                shares[key].append(share)
            times["python"].append(python_epochs(a.epochs, a.threads))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"Fashion-MNIST MLP 784-32-10, batch 32, {a.threads} threads; median of {a.rounds} "
          f"rounds of {a.epochs} epochs (seconds per epoch)")
    print(f"{'program':<44} {'s/epoch':>8} {'optimizer share':>16}")
    print(f"{'rmsprop train (rmsprop::torch::RMSprop)':<44} {med['ours']:8.3f} "
          f"{statistics.median(shares['ours']):15.1%}")
    print(f"{'rmsprop train --backend torch (libtorch)':<44} {med['torch']:8.3f} "
          f"{statistics.median(shares['torch']):15.1%}")
    print(f"{'Python PyTorch script (torch.optim.RMSprop)':<44} {med['python']:8.3f} {'':>16}")
    print(f"ours is {med['torch'] / med['ours']:.2f}x the libtorch optimizer's speed per epoch, "
          f"{med['python'] / med['ours']:.2f}x the Python script's")
    print("rounds:", json.dumps({k: [round(x, 4) for x in v] for k, v in times.items()}))


if __name__ == "__main__":
    main()
