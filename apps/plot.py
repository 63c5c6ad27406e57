#!/usr/bin/python3
"""Draws the rmsprop CLI's plots from the CSV files it wrote (matplotlib, no display needed).

  plot.py curves METRICS_CSV OUT_DIR TITLE     loss.png and accuracy.png: train vs validation
  plot.py compare EPOCHS_CSV OUT_PNG TITLE     every optimizer's validation curves in one figure
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


def main(argv):
    if len(argv) != 5 or argv[1] not in ("curves", "compare"):
        sys.exit(__doc__)
    {"curves": curves, "compare": compare}[argv[1]](argv[2], argv[3], argv[4])


if __name__ == "__main__":
    main(sys.argv)
