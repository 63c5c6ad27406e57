#!/usr/bin/python3
"""The seed's model trained by plain Python PyTorch: the peer of `rmsprop train` in
bench/epoch_bench.py. MLP 784-32-10 (ReLU, dropout 0.2), torch.optim.RMSprop lr 1e-3 alpha 0.9
eps 1e-8, batch 32, the last 20% of the training set held out. Prints "epoch N SECONDS VAL_ACC".
"""
import gzip
import sys
import time

import numpy as np
import torch

epochs, threads = int(sys.argv[1]), int(sys.argv[2])
torch.manual_seed(42)
torch.set_num_threads(threads)
root = "/usr/share/datasets/fashion-mnist/"


def idx(name, offset):
    return np.frombuffer(gzip.open(root + name).read(), np.uint8, offset=offset)


x = torch.tensor(idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 784) / 255.0, dtype=torch.float32)
y = torch.tensor(idx("train-labels-idx1-ubyte.gz", 8).astype(np.int64))
x_val, y_val, x, y = x[48000:], y[48000:], x[:48000], y[:48000]
model = torch.nn.Sequential(torch.nn.Linear(784, 32), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                            torch.nn.Linear(32, 10))
opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-8)
loss_fn = torch.nn.CrossEntropyLoss()
for epoch in range(epochs):
    start = time.perf_counter()
    model.train()
    order = torch.randperm(len(x))
    for i in range(0, len(x), 32):
        batch = order[i:i + 32]
        opt.zero_grad()
        loss = loss_fn(model(x[batch]), y[batch])
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        model.eval()
        accuracy = (model(x_val).argmax(1) == y_val).float().mean().item()
    print(f"epoch {epoch + 1} {seconds:.4f} {accuracy:.4f}", flush=True)
