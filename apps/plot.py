#!/usr/bin/python3
"""Draws the rmsprop CLI's plots from the CSV files it wrote (matplotlib, no display needed).

  plot.py curves METRICS_CSV OUT_DIR TITLE     loss.png and accuracy.png: train vs validation
  plot.py compare EPOCHS_CSV OUT_PNG TITLE     every optimizer's validation curves in one figure
  plot.py series CSV OUT_PNG TITLE XLABEL YLABEL linear|log COLUMNS
                                               columns (comma-separated) against the first one
  plot.py rosenbrock CSV OUT_PNG NAMES          trajectories on the contours, distance per step
  plot.py linreg CSV OUT_PNG TITLE              test points and the fitted line
  plot.py tune CSV OUT_PNG TITLE                validation loss over the searched options
  plot.py study TUNE_JSON OUT_DIR               a TPE study: tune-history.png, tune-curves.png,
                                               tune-slice.png, tune-map.png (two numeric options)
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def column(rows, name):
    return [float(r[name]) for r in rows if r.get(name, "") != ""]


def curves(csv_path, out_dir, title):
    rows = read_rows(csv_path)
    epochs = column(rows, "epoch")
    panels = [("loss", "Loss")]
    if column(rows, "train_accuracy"):
        panels.append(("accuracy", "Accuracy"))
    for key, label in panels:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        ax.plot(epochs, column(rows, "train_" + key), "o-", label="train")
        ax.plot(epochs, column(rows, "val_" + key), "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.set_title(f"{title}: {label.lower()}")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(f"{out_dir}/{key}.png", dpi=110)
        plt.close(fig)


def compare(csv_path, out_png, title):
    rows = read_rows(csv_path)
    names = list(dict.fromkeys(r["optimizer"] for r in rows))
    classify = any(r["val_accuracy"] != "" for r in rows)
    panels = [("val_loss", "validation loss"), ("train_loss", "training loss")]
    if classify:
        panels.insert(1, ("val_accuracy", "validation accuracy"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.4))
    best = {}
    for name in names:
        mine = [r for r in rows if r["optimizer"] == name]
        epochs = column(mine, "epoch")
        for ax, (key, label) in zip(axes, panels):
            ax.plot(epochs, column(mine, key), "o-", markersize=3, label=name)
        last = mine[-1]
        best[name] = float(last["val_accuracy"]) if classify else -float(last["val_loss"])
    winner = max(best, key=best.get)
    for ax, (key, label) in zip(axes, panels):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.set_title(label)
        ax.grid(alpha=0.3)
        if "loss" in key:
            ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    score = f"{best[winner]:.4f} val accuracy" if classify else f"{-best[winner]:.4g} val loss"
    fig.suptitle(f"{title} — best: {winner} ({score})")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def series(csv_path, out_png, title, xlabel, ylabel, yscale, columns):
    rows = read_rows(csv_path)
    x_name = list(rows[0].keys())[0]
    fig, ax = plt.subplots(figsize=(7, 4.4))
    for name in columns.split(","):
        ax.plot(column(rows, x_name), [abs(v) for v in column(rows, name)], label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_yscale(yscale)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def rosenbrock(csv_path, out_png, names):
    import numpy as np
    rows = read_rows(csv_path)
    names = names.split(",")
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    gx, gy = np.meshgrid(np.linspace(-2, 2, 300), np.linspace(-1, 3, 300))
    left.contour(gx, gy, (1 - gx) ** 2 + 100 * (gy - gx ** 2) ** 2,
                 levels=np.logspace(-1, 3.5, 20), cmap="Greys", linewidths=0.6)
    left.plot([1], [1], "k*", markersize=12, label="optimum (1, 1)")
    for k, name in enumerate(names):
        mine = [r for r in rows if int(float(r["optimizer"])) == k]
        left.plot(column(mine, "x"), column(mine, "y"), label=name, linewidth=1.2)
        right.plot(column(mine, "step"), column(mine, "distance"), label=name)
    left.set_xlim(-2, 2)
    left.set_ylim(-1, 3)
    left.set_title("Rosenbrock valley from (-1.5, 2)")
    left.set_xlabel("x")
    left.set_ylabel("y")
    left.legend(fontsize=8)
    right.set_yscale("log")
    right.set_xlabel("step")
    right.set_ylabel("distance to (1, 1)")
    right.set_title("Distance to the optimum")
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def linreg(csv_path, out_png, title):
    rows = sorted(read_rows(csv_path), key=lambda r: float(r["x"]))
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.scatter(column(rows, "x"), column(rows, "y"), s=8, alpha=0.6, label="test points")
    ax.plot(column(rows, "x"), column(rows, "fitted"), "r-", label="RMSProp fit")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def tune(csv_path, out_png, title):
    import numpy as np
    rows = read_rows(csv_path)
    params = list(rows[0].keys())[:list(rows[0].keys()).index("val_loss")]
    ok = [r for r in rows if r["status"] == "ok"]
    best = min(ok, key=lambda r: float(r["val_loss"]))
    label = ", ".join(f"{p}={best[p]}" for p in params)
    fig, ax = plt.subplots(figsize=(7, 5))
    if len(params) == 2 and len(rows) == len({(r[params[0]], r[params[1]]) for r in rows}):
        xs = sorted({r[params[0]] for r in rows}, key=float)
        ys = sorted({r[params[1]] for r in rows}, key=float)
        grid = np.full((len(ys), len(xs)), np.nan)
        for r in ok:
            grid[ys.index(r[params[1]]), xs.index(r[params[0]])] = float(r["val_loss"])
        image = ax.imshow(grid, origin="lower", cmap="viridis_r", aspect="auto")
        middle = np.nanmedian(grid)
        for i in range(len(ys)):
            for j in range(len(xs)):
                text = "failed" if np.isnan(grid[i, j]) else f"{grid[i, j]:.4g}"
                light = not np.isnan(grid[i, j]) and grid[i, j] <= middle  # yellow end of the map
                ax.text(j, i, text, ha="center", va="center", color="k" if light else "w",
                        fontsize=9)
        ax.set_xticks(range(len(xs)), xs)
        ax.set_yticks(range(len(ys)), ys)
        ax.set_xlabel(params[0])
        ax.set_ylabel(params[1])
        fig.colorbar(image, label="final validation loss")
    elif len(params) >= 2:  # random search: the first two options, colored by the loss
        points = ax.scatter([float(r[params[0]]) for r in ok], [float(r[params[1]]) for r in ok],
                            c=[float(r["val_loss"]) for r in ok], cmap="viridis_r", s=60)
        ax.scatter([float(best[params[0]])], [float(best[params[1]])], marker="*", s=300,
                   c="red", label="best")
        if all(float(r[params[0]]) > 0 for r in ok):
            ax.set_xscale("log")
        ax.set_xlabel(params[0])
        ax.set_ylabel(params[1])
        ax.legend()
        fig.colorbar(points, label="final validation loss")
    else:
        values = sorted(ok, key=lambda r: float(r[params[0]]))
        ax.plot([float(r[params[0]]) for r in values], [float(r["val_loss"]) for r in values], "o-")
        ax.set_xscale("log" if all(float(r[params[0]]) > 0 for r in values) else "linear")
        ax.set_xlabel(params[0])
        ax.set_ylabel("final validation loss")
        ax.grid(alpha=0.3)
    ax.set_title(f"{title}\nbest: {label} (val loss {float(best['val_loss']):.4g})")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def number(text):
    try:
        return float(text)
    except ValueError:
        return None


def save_log_loss(fig, ax, xlabel, ylabel, title, out_png):
    """A loss (log scale) over whole numbers (trials, epochs), with its legend, saved."""
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def study(json_path, out_dir):
    """What a person looks at in a TPE study: how the search converged (history), which trials
    the pruner stopped and when (curves), the loss over each option (slice) and over the first
    two numeric options (map)."""
    import json
    import os
    with open(json_path) as f:
        doc = json.load(f)
    trials = sorted(doc["trials"], key=lambda t: t["trial"])
    done = [t for t in trials if t["state"] == "complete"]
    pruned = [t for t in trials if t["state"] == "pruned"]
    best = doc["best"]
    model = best.get("model", "")
    label = ", ".join(f"{p}={best[p] if number(best[p]) is None else f'{number(best[p]):.4g}'}"
                      for p in doc["parameters"])
    title = f"TPE search{' on ' + model if model else ''}\nbest: {label} (val loss {best['val_loss']:.4g})"
    path = lambda name: os.path.join(out_dir, name)  # noqa: E731

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter([t["trial"] for t in done], [t["val_loss"] for t in done], label="finished", s=30)
    if pruned:
        ax.scatter([t["trial"] for t in pruned], [t["val_loss"] for t in pruned], marker="x",
                   c="tab:red", label="pruned (last epoch's loss)", s=30)
    running, xs, ys = float("inf"), [], []
    for t in trials:
        if t["state"] == "complete":
            running = min(running, t["val_loss"])
        if running < float("inf"):
            xs.append(t["trial"])
            ys.append(running)
    ax.step(xs, ys, where="post", c="k", label="best so far")
    save_log_loss(fig, ax, "trial", "final validation loss", title, path("tune-history.png"))

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for t in done + pruned:
        curve = [v for v in t["val_losses"] if v is not None]
        style = dict(c="tab:red", ls="--", alpha=0.7) if t["state"] == "pruned" else \
            dict(c="tab:blue", alpha=0.5)
        ax.plot(range(1, len(curve) + 1), curve, **style)
    ax.plot([], [], c="tab:blue", label="finished")
    ax.plot([], [], c="tab:red", ls="--", label="pruned")
    save_log_loss(fig, ax, "epoch", "validation loss", title, path("tune-curves.png"))

    params = doc["parameters"]
    fig, axes = plt.subplots(1, len(params), figsize=(4.5 * len(params) + 1, 4.2), squeeze=False,
                             sharey=True, constrained_layout=True)
    for ax, p in zip(axes[0], params):
        values = [number(t[p]) for t in done]
        numeric = all(v is not None for v in values)
        xs = values if numeric else [t[p] for t in done]
        points = ax.scatter(xs, [t["val_loss"] for t in done], c=[t["trial"] for t in done],
                            cmap="viridis", s=30)
        if numeric and values and min(values) > 0 and max(values) / min(values) > 10:
            ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(p)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("final validation loss")
    fig.colorbar(points, ax=axes[0].tolist(), label="trial")
    fig.suptitle(title)
    fig.savefig(path("tune-slice.png"), dpi=110)
    plt.close(fig)

    numeric = [p for p in params if all(number(t[p]) is not None for t in done)]
    pair = ["lr", "alpha"] if {"lr", "alpha"} <= set(numeric) else numeric[:2]
    if len(pair) == 2 and done:
        x, y = ([number(t[p]) for t in done] for p in pair)
        fig, ax = plt.subplots(figsize=(7, 5))
        points = ax.scatter(x, y, c=[t["val_loss"] for t in done], cmap="viridis_r", s=60,
                            norm=matplotlib.colors.LogNorm())
        ax.scatter([number(best[pair[0]])], [number(best[pair[1]])], marker="*", s=300,
                   c="red", label="best")
        for axis, values in (("x", x), ("y", y)):
            if min(values) > 0 and max(values) / min(values) > 10:
                getattr(ax, f"set_{axis}scale")("log")
        ax.set_xlabel(pair[0])
        ax.set_ylabel(pair[1])
        ax.legend()
        fig.colorbar(points, label="final validation loss")
        ax.set_title(title)
        fig.tight_layout()
        fig.savefig(path("tune-map.png"), dpi=110)
        plt.close(fig)


MODES = {"curves": (curves, 3), "compare": (compare, 3), "series": (series, 7),
         "rosenbrock": (rosenbrock, 3), "linreg": (linreg, 3), "tune": (tune, 3),
         "study": (study, 2)}


def main(argv):
    if len(argv) < 2 or argv[1] not in MODES or len(argv) != 2 + MODES[argv[1]][1]:
        sys.exit(__doc__)
    MODES[argv[1]][0](*argv[2:])


if __name__ == "__main__":
    main(sys.argv)
