"""Matplotlib figures of the report (Agg backend, PNG): Pareto plots, ROC, confusion matrices, loss curves.

Each function draws measured data handed to it; none computes model numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: stages run on servers without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save(fig, path: str | Path) -> None:
    """Write ``fig`` as PNG without the version/timestamp metadata (stable bytes for DVC) and close it."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def pareto_axes(ax, points: dict[str, tuple[float, float]], front: list[str], xlabel: str, ylabel: str) -> None:
    """Scatter of ``{name: (cost, quality)}`` with every point labelled and the frontier drawn as a step line."""
    for name, (x, y) in sorted(points.items()):
        on = name in front
        ax.scatter([x], [y], s=36 if on else 20, c="tab:red" if on else "tab:blue", zorder=3)
        ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if front:
        xs, ys = zip(*(points[n] for n in front))
        ax.step(xs, ys, where="post", color="tab:red", lw=1, label="Pareto frontier")
        ax.legend(fontsize=7, loc="lower right")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def roc_axes(ax, curves: dict[str, dict]) -> None:
    """ROC curves ``{variant: {"fpr", "tpr", "auc"}}`` on one axes, with the chance diagonal."""
    for name, c in sorted(curves.items()):
        ax.plot(c["fpr"], c["tpr"], lw=1, label=f"{name} (AUC {c['auc']:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=6, loc="lower right")
    ax.grid(alpha=0.3)


def loss_axes(ax, curves: dict[str, list[dict[str, float]]], ylabel: str = "training loss") -> None:
    """Logged values (``loss``) against step, one line per ``stage/key`` log."""
    for name, rows in sorted(curves.items()):
        ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], lw=1, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)


def bar_axes(ax, values: dict[str, float], ylabel: str, reference: float | None = None) -> None:
    """One bar per variant (e.g. measured speedup), with an optional reference line (1.0x)."""
    names = sorted(values)
    ax.bar(range(len(names)), [values[n] for n in names], color="tab:blue")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    if reference is not None:
        ax.axhline(reference, c="grey", ls="--", lw=0.8)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")


def confusion_figure(matrices: dict[str, list[list[int]]]):
    """Confusion matrices side by side (rows actual, columns predicted), counts written in the cells."""
    names = sorted(matrices)
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.5 * rows), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        cm = np.asarray(matrices[name])
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                    color="white" if v > cm.max() / 2 else "black")
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_ylabel("actual", fontsize=7)
        ax.set_xticks(range(cm.shape[1]))
        ax.set_yticks(range(cm.shape[0]))
    fig.tight_layout()
    return fig


def single(draw: Callable, *args, size: tuple[float, float] = (5.5, 4.2)):
    """A one-axes figure drawn by ``draw(ax, *args)``."""
    fig, ax = plt.subplots(figsize=size)
    draw(ax, *args)
    fig.tight_layout()
    return fig


def grid_2x2(panels: list[tuple[str, Callable, tuple]]):
    """The paper figure: four ``(title, draw, args)`` panels, lettered (a)-(d)."""
    fig, axes = plt.subplots(2, 2, figsize=(10, 8))
    for ax, letter, (title, draw, args) in zip(axes.flat, "abcd", panels):
        draw(ax, *args)
        ax.set_title(f"({letter}) {title}", fontsize=9, loc="left")
    fig.tight_layout()
    return fig
