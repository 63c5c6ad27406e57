#!/usr/bin/env /usr/bin/python3
"""Which 8-bit code map for RMSProp's state: measured, not assumed.

Trains a small MLP (784-64-10, tanh) on Fashion-MNIST with centered RMSProp + momentum in
NumPy (float32 arithmetic), keeping square_avg, grad_avg and momentum_buffer quantized in
blocks of 256 with one float32 scale per block, for several code maps, and reports each
run's distance from the float32-state run after the same steps (same batches), its final
loss, and the per-block round-trip error of each map on the state it met.

Code maps (each of 256 codes, scaled per block by the block's largest |x|):
  dynamic  the dynamic (tree) map of Dettmers et al. 2022: decades 1e-6..1 with more
           fraction codes in the larger decades; nearest code by search
  fp-e4m3  signed: sign, 4 exponent and 3 fraction bits (2^-15..1.875 of the scale), found
           from the float's own bits (no search: vectorizes)
  fp-e4m4  unsigned: 4 exponent, 4 fraction bits (2^-15..1.9375)
  linear   round(127·x/max)
square_avg is quantized either as v or as sqrt(v) (v = r² when read).

    /usr/bin/python3 bench/state8_codec_study.py [--steps 1000] [--seed 0]
"""
import argparse
import gzip
import struct

import numpy as np

BLOCK = 256
F = np.float32


def load_fashion_mnist(n):
    root = "/usr/share/datasets/fashion-mnist/"
    with gzip.open(root + "train-images-idx3-ubyte.gz") as f:
        _, count, rows, cols = struct.unpack(">IIII", f.read(16))
        x = np.frombuffer(f.read(), np.uint8).reshape(count, rows * cols)[:n]
    with gzip.open(root + "train-labels-idx1-ubyte.gz") as f:
        f.read(8)
        y = np.frombuffer(f.read(), np.uint8)[:n]
    return (x.astype(F) / F(255)), y.astype(np.int64)


# --- code maps: each a pair (quantize to codes + scales, dequantize) over a flat float32 array

def blocks(x):
    pad = (-x.size) % BLOCK
    return np.concatenate([x, np.zeros(pad, F)]).reshape(-1, BLOCK), x.size


def dynamic_map(signed):
    """The dynamic tree map's 256 sorted values (from the paper's description)."""
    values = [0.0, 1.0]
    exponent_bits = 7
    for i in range(exponent_bits):
        # signed: the sign takes a bit, so each decade has half the fraction codes
        count = 2 ** (i + (0 if signed else 1)) + 1
        edges = np.linspace(0.1, 1, count)
        means = (edges[:-1] + edges[1:]) / 2 * 10.0 ** (i - (exponent_bits - 1))
        values += list(means) + (list(-means) if signed else [])
    values = np.array(sorted(values), F)
    if values.size < 256:  # pad with zeros as the paper's map does
        values = np.sort(np.concatenate([values, np.zeros(256 - values.size, F)]))
    return values[:256]


def table_codec(table):
    mids = (table[1:] + table[:-1]) / 2

    def quantize(x):
        b, n = blocks(x)
        scale = np.abs(b).max(axis=1).astype(F)
        y = b / np.where(scale > 0, scale, F(1))[:, None]
        return np.searchsorted(mids, y).astype(np.uint8), scale, n

    def dequantize(q):
        codes, scale, n = q
        return (table[codes] * scale[:, None]).reshape(-1)[:n]

    return quantize, dequantize


def float_codec(exponent_bits, fraction_bits, signed):
    """Codes that are the top bits of the float32 itself: sign | exponent | fraction."""
    magnitude_bits = exponent_bits + fraction_bits
    top = (1 << magnitude_bits) - 1
    shift = 23 - fraction_bits
    largest_field = (127 << fraction_bits) | ((1 << fraction_bits) - 1)
    offset = largest_field - top  # field of code 1 is offset + 1
    grid_max = F(2 - 2.0 ** -fraction_bits)

    def quantize(x):
        b, n = blocks(x)
        scale = (np.abs(b).max(axis=1) / grid_max).astype(F)
        inv = np.where(scale > 0, F(1) / np.where(scale > 0, scale, F(1)), F(0)).astype(F)
        y = np.abs(b) * inv[:, None]
        bits = y.view(np.uint32).astype(np.int64)
        field = (bits + (1 << (shift - 1))) >> shift
        code = np.clip(field - offset, 0, top)
        if not signed:  # a nonzero never becomes 0: v is a denominator
            code = np.where((y > 0) & (code == 0), 1, code)
        if signed:
            code = code | (np.signbit(b).astype(np.int64) << magnitude_bits)
        return code.astype(np.uint8), scale, n

    def dequantize(q):
        codes, scale, n = q
        c = codes.astype(np.int64)
        m = c & top
        value = ((m + offset) << shift).astype(np.uint32).view(F)
        value = np.where(m == 0, F(0), value)
        if signed:
            value = np.where(c >> magnitude_bits, -value, value)
        return (value * scale[:, None]).reshape(-1)[:n]

    return quantize, dequantize


def linear_codec():
    def quantize(x):
        b, n = blocks(x)
        scale = np.abs(b).max(axis=1).astype(F)
        y = b / np.where(scale > 0, scale, F(1))[:, None]
        return np.rint(y * 127).astype(np.int8), scale, n

    def dequantize(q):
        codes, scale, n = q
        return (codes.astype(F) / F(127) * scale[:, None]).reshape(-1)[:n]

    return quantize, dequantize


CODECS = {
    "dynamic-signed": table_codec(dynamic_map(True)),
    "dynamic-unsigned": table_codec(dynamic_map(False)),
    "fp-e4m3": float_codec(4, 3, True),
    "fp-e4m4": float_codec(4, 4, False),
    "fp-e3m5": float_codec(3, 5, False),
    "fp-e3m4": float_codec(3, 4, True),
    "linear": linear_codec(),
}


def bfloat16(x):
    """Round to nearest even bfloat16, as the library's bfloat16 state does."""
    bits = x.astype(F).view(np.uint32).astype(np.uint64)
    bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return bits.astype(np.uint32).view(F)


def roundtrip(x, codec, sqrt=False):
    if codec == "bfloat16":
        return bfloat16(x)
    quantize, dequantize = CODECS[codec]
    if sqrt:
        r = dequantize(quantize(np.sqrt(x)))
        return r * r
    return dequantize(quantize(x))


# --- the model and the optimizer

def init(rng):
    w1 = (rng.standard_normal((784, 64)) / np.sqrt(784)).astype(F)
    w2 = (rng.standard_normal((64, 10)) / np.sqrt(64)).astype(F)
    return [w1, np.zeros(64, F), w2, np.zeros(10, F)]


def loss_and_grads(params, x, y):
    w1, b1, w2, b2 = params
    h = np.tanh(x @ w1 + b1)
    z = h @ w2 + b2
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(len(y)), y] + F(1e-12)).mean()
    dz = p
    dz[np.arange(len(y)), y] -= 1
    dz /= len(y)
    dw2 = h.T @ dz
    dh = (dz @ w2.T) * (1 - h * h)
    return F(loss), [x.T @ dh, dh.sum(0), dw2, dz.sum(0)]


def train(x, y, steps, seed, square_codec=None, square_sqrt=False, signed_codec=None):
    rng = np.random.default_rng(seed)
    params = init(rng)
    lr, alpha, eps, mu = F(1e-3), F(0.99), F(1e-8), F(0.9)
    v = [np.zeros(p.size, F) for p in params]
    m = [np.zeros(p.size, F) for p in params]
    b = [np.zeros(p.size, F) for p in params]
    order = np.random.default_rng(seed + 1)
    errors = {"square_avg": [], "grad_avg": [], "momentum_buffer": []}
    for step in range(steps):
        idx = order.integers(0, len(y), 64)
        loss, grads = loss_and_grads(params, x[idx], y[idx])
        for k, (p, g) in enumerate(zip(params, grads)):
            g = g.reshape(-1)
            v[k] = alpha * v[k] + (F(1) - alpha) * g * g
            m[k] = m[k] + (F(1) - alpha) * (g - m[k])
            if square_codec:
                exact = v[k]
                v[k] = roundtrip(v[k], square_codec, square_sqrt).astype(F)
                errors["square_avg"].append(relative_sqrt_error(exact, v[k]))
            if signed_codec:
                exact = m[k]
                m[k] = roundtrip(m[k], signed_codec).astype(F)
                errors["grad_avg"].append(block_error(exact, m[k]))
            w = np.maximum(v[k] - m[k] * m[k], F(0))
            u = g / (np.sqrt(w) + eps)
            b[k] = mu * b[k] + u
            if signed_codec:
                exact = b[k]
                b[k] = roundtrip(b[k], signed_codec).astype(F)
                errors["momentum_buffer"].append(block_error(exact, b[k]))
            p -= (lr * b[k]).reshape(p.shape)
    full_loss, _ = loss_and_grads(params, x, y)
    return params, full_loss, errors


def relative_sqrt_error(exact, got):
    """|sqrt(v') − sqrt(v)| / sqrt(v) over nonzero v (the denominator's relative error): its
    99th percentile, and the share of nonzero v read back as 0 (a step of g/eps)."""
    nz = exact > 0
    rel = np.abs(np.sqrt(got[nz]) - np.sqrt(exact[nz])) / np.sqrt(exact[nz])
    return float(np.percentile(rel, 99)), float(np.mean(got[nz] == 0))


def block_error(exact, got):
    """99th percentile of |x' − x| / (block's max |x|): the error as a share of the block's
    scale."""
    b, _ = blocks(exact)
    g, _ = blocks(got)
    scale = np.abs(b).max(axis=1, keepdims=True)
    scale = np.where(scale > 0, scale, 1)
    big = np.abs(b) > 0.01 * scale  # values above 1% of their block's scale
    relative = np.abs(g - b)[big] / np.abs(b)[big]
    return (float(np.percentile(np.abs(g - b) / scale, 99)),
            float(np.percentile(relative, 99)) if relative.size else 0.0)


def distance(a, b):
    num = sum(float(((x - y) ** 2).sum()) for x, y in zip(a, b))
    den = sum(float((y ** 2).sum()) for y in b)
    return np.sqrt(num / den)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--samples", type=int, default=20000)
    a = ap.parse_args()
    x, y = load_fashion_mnist(a.samples)
    reference, ref_loss, _ = train(x, y, a.steps, a.seed)
    print(f"float32 state: loss {ref_loss:.4f} after {a.steps} steps "
          f"(centered RMSProp + momentum 0.9, lr 1e-3, alpha 0.99)")
    cases = [
        ("bfloat16 state (for scale)", "bfloat16", False, "bfloat16"),
        ("v: dynamic; m, b: dynamic (the paper)", "dynamic-unsigned", False, "dynamic-signed"),
        ("v: dynamic on sqrt(v); m, b: dynamic", "dynamic-unsigned", True, "dynamic-signed"),
        ("v: fp-e4m4 on v; m, b: fp-e4m3", "fp-e4m4", False, "fp-e4m3"),
        ("v: fp-e4m4 on sqrt(v); m, b: fp-e4m3", "fp-e4m4", True, "fp-e4m3"),
        ("v: fp-e3m5 on sqrt(v); m, b: fp-e4m3", "fp-e3m5", True, "fp-e4m3"),
        ("v: fp-e4m4 on sqrt(v); m, b: fp-e3m4", "fp-e4m4", True, "fp-e3m4"),
        ("v: fp-e4m4 on sqrt(v); m, b: linear", "fp-e4m4", True, "linear"),
    ]
    print("distance: to the float32-state parameters; sqrt(v) rel: 99th percentile of its "
          "relative error;\nv->0: share of nonzero v read as 0; m, b: 99th percentile of the "
          "error over the block's scale, and (rel) of the relative error of values above 1% of "
          "the scale")
    print(f"{'code maps':42s} {'distance':>9s} {'loss':>7s} {'sqrt(v) rel':>11s} {'v->0':>8s} "
          f"{'m':>8s} {'m rel':>8s} {'b':>8s} {'b rel':>8s}")
    for name, sq, sqrt, signed in cases:
        params, loss, err = train(x, y, a.steps, a.seed, sq, sqrt, signed)
        sq = np.array(err["square_avg"])
        m, b = np.array(err["grad_avg"]), np.array(err["momentum_buffer"])
        print(f"{name:42s} {distance(params, reference):9.2e} {loss:7.4f} "
              f"{sq[:, 0].max():11.2e} {sq[:, 1].max():8.1e} "
              f"{m[:, 0].max():8.2e} {m[:, 1].max():8.2e} {b[:, 0].max():8.2e} "
              f"{b[:, 1].max():8.2e}")


if __name__ == "__main__":
    main()
