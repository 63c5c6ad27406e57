"""Data parallel on torch.distributed (gloo, loopback, 2 processes): DistributedDataParallel
and ZeroRedundancyOptimizer with rmsprop.torch.RMSprop give the weights of a single-process
run on the same global batch."""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import rmsprop.torch as rt

WORLD = 2
STEPS = 20
CONFIG = dict(lr=0.01, momentum=0.9, centered=True)


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4))


def batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(64, 8, generator=g), torch.randn(64, 4, generator=g)


def single_process():
    m = model()
    opt = rt.RMSprop(m.parameters(), **CONFIG)
    x, y = batch()
    for _ in range(STEPS):
        opt.zero_grad()
        torch.nn.functional.mse_loss(m(x), y).backward()
        opt.step()
    return [p.detach() for p in m.parameters()]


def worker(rank, port, mode, out):
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    # torch >= 2.4 asks for a libuv TCP store by default; Debian's torch is built without it
    os.environ["USE_LIBUV"] = "0"
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    net = torch.nn.parallel.DistributedDataParallel(model())
    if mode == "ddp":
        opt = rt.RMSprop(net.parameters(), threads=1, **CONFIG)
    else:
        from torch.distributed.optim import ZeroRedundancyOptimizer
        opt = ZeroRedundancyOptimizer(net.parameters(), optimizer_class=rt.RMSprop, threads=1,
                                      **CONFIG)
    x, y = batch()
    half = x.shape[0] // WORLD
    xs, ys = x[rank * half:(rank + 1) * half], y[rank * half:(rank + 1) * half]
    for _ in range(STEPS):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(xs), ys).backward()  # DDP averages the gradients
        opt.step()
    if rank == 0:
        torch.save([p.detach() for p in net.module.parameters()], out)
    dist.barrier()
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("mode", ["ddp", "zero"])
def test_two_processes_equal_one(mode, tmp_path):
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    out = str(tmp_path / "weights.pt")
    mp.spawn(worker, args=(free_port(), mode, out), nprocs=WORLD, join=True)
    ours = torch.load(out)
    # the all-reduce sums the two half-batch gradients in another order than one backward
    # over the whole batch: float32 rounding, not an error (64 ulps of each tensor's scale)
    for a, b in zip(ours, single_process()):
        error = ((a - b).abs().max() / b.abs().max()).item()
        assert error <= 64 * 2.0**-23, error
