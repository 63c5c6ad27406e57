#!/usr/bin/env python3
"""Our CUDA step beside torch.optim.RMSprop (foreach) and a device-to-device copy, one run.

    PYTHONPATH=build/python python3 bench/cuda_torch_bench.py [--repeats N] [--quick]

For one tensor of 2^28 float32 elements and 4096 tensors of 65536 (--quick: 2^24 and 256),
plain / momentum / centered (+ momentum), float32 and bfloat16 parameters: milliseconds per
step (median of CUDA-event timings), GB/s of the bytes a fused step must move, that as % of a
device-to-device copy's GB/s (the roofline), and torch's time over ours. Ours is measured
three ways: eager with the default non_finite="error" (a device scan and one host read per
step), eager with non_finite="propagate" (the kernel alone, Python included), and replayed
from a CUDA graph (capturable=True: the device time alone); torch's foreach step eager, and
graphed (capturable=True). Ratios: torch eager / ours eager (default), torch eager / ours
graph, torch graph / ours graph.
"""
import argparse
import sys

import torch

import rmsprop
import rmsprop.torch as rt


def median_ms(fn, repeats):
    fn(), fn()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(repeats):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    return times[len(times) // 2]


def graphed(step):
    """`step` captured once in a CUDA graph; returns the replay."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def params_for(tensors, elements, dtype):
    g = torch.Generator(device="cuda").manual_seed(0)
    params = []
    for _ in range(tensors):
        p = torch.nn.Parameter(torch.randn(elements, device="cuda", generator=g).to(dtype))
        p.grad = torch.randn(elements, device="cuda", generator=g).to(dtype)
        params.append(p)
    return params


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if not torch.cuda.is_available() or not rmsprop.cuda_available():
        sys.exit("cuda_torch_bench: needs a CUDA GPU for torch and rmsprop's CUDA backend")
    print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"{args.repeats} repeats")
    shapes = [(1, 1 << 24), (256, 65536)] if args.quick else [(1, 1 << 28), (4096, 65536)]
    variants = {"plain": {}, "momentum": dict(momentum=0.9),
                "centered": dict(momentum=0.9, centered=True)}
    print(f"{'shape':<14}{'variant':<10}{'dtype':<10}{'ours ms':>9}{'prop ms':>9}"
          f"{'graph ms':>9}{'torch ms':>9}{'t.graph':>9}{'GB/s':>7}{'% copy':>8}"
          f"{'t/ours':>8}{'t/graph':>8}{'tg/graph':>9}")
    for tensors, elements in shapes:
        n = tensors * elements
        for name, options in variants.items():
            for dtype in (torch.float32, torch.bfloat16):
                size = torch.tensor([], dtype=dtype).element_size()
                states = 1 + ("momentum" in options) + bool(options.get("centered"))
                moved = n * (3 * size + 2 * 4 * states)
                src = torch.empty(moved // 2 // 4, dtype=torch.float32, device="cuda")
                dst = torch.empty_like(src)
                copy_ms = median_ms(lambda: dst.copy_(src), args.repeats)
                del src, dst
                copy_gbs = moved / (copy_ms * 1e6)

                # bfloat16 parameters: torch keeps bfloat16 state; ours float32 (more bytes)
                ours = params_for(tensors, elements, dtype)
                opt = rt.RMSprop(ours, lr=0.0, **options)
                ours_ms = median_ms(opt.step, args.repeats)
                del opt
                prop = rt.RMSprop(ours, lr=0.0, non_finite="propagate", **options)
                prop_ms = median_ms(prop.step, args.repeats)
                del prop
                cap = rt.RMSprop(ours, lr=0.0, capturable=True, non_finite="propagate",
                                 **options)
                graph_ms = median_ms(graphed(cap.step), args.repeats)
                del ours, cap

                theirs = params_for(tensors, elements, dtype)
                topt = torch.optim.RMSprop(theirs, lr=0.0, foreach=True, **options)
                torch_ms = median_ms(topt.step, args.repeats)
                del topt
                try:
                    tcap = torch.optim.RMSprop(theirs, lr=0.0, foreach=True, capturable=True,
                                               **options)
                    torch_graph_ms = median_ms(graphed(tcap.step), args.repeats)
                    del tcap
                except (TypeError, RuntimeError) as e:
                    print(f"torch capturable: {type(e).__name__}: {e}")
                    torch_graph_ms = float("nan")
                del theirs
                torch.cuda.empty_cache()

                gbs = moved / (graph_ms * 1e6)
                print(f"{f'{tensors} x {elements}':<14}{name:<10}{str(dtype)[6:]:<10}"
                      f"{ours_ms:9.3f}{prop_ms:9.3f}{graph_ms:9.3f}{torch_ms:9.3f}"
                      f"{torch_graph_ms:9.3f}{gbs:7.0f}{100 * gbs / copy_gbs:7.1f}%"
                      f"{torch_ms / ours_ms:7.2f}x{torch_ms / graph_ms:7.2f}x"
                      f"{torch_graph_ms / graph_ms:8.2f}x", flush=True)


if __name__ == "__main__":
    main()
