"""Matplotlib figures of the report (Agg backend, PNG): Pareto plots, ROC with a low-FPR inset, confusion
matrices, precision/recall/F1 bars, key metrics per variant, training and validation curves per step and
per epoch, and the 2x2 paper figure.

Each function draws measured data handed to it; none computes model numbers. Every series has a colour
and a marker of its own (:func:`series_styles`), the same for a variant in every figure of a task; lines
carry their markers, so a one-point series (a one-epoch run) is visible; legends stand outside the axes, so
no label covers a point.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: stages run on servers without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
# tab20 with its ten tab10 hues first, then their light partners: 20 distinct colours.
PALETTE = tuple(matplotlib.colormaps["tab20"].colors[0::2] + matplotlib.colormaps["tab20"].colors[1::2])
# precision / recall / F1 bars: colours and hatches of their own (the variants are on the x axis)
PRF = (("precision", "#4c72b0", ""), ("recall", "#dd8452", "//"), ("F1", "#55a868", ".."))


@dataclass(frozen=True)
class Style:
    """How one series is drawn."""

    color: tuple[float, float, float]
    marker: str


def series_styles(names: Iterable[str]) -> dict[str, Style]:
    """A colour and a marker per name (sorted): :data:`PALETTE`'s 20 colours and :data:`MARKERS`' 12 markers
    both cycle, so colours are distinct up to 20 series, markers up to 12, and (colour, marker) pairs up to 60."""
    return {name: Style(PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)])
            for i, name in enumerate(sorted(set(names)))}


def save(fig, path: str | Path) -> None:
    """Write ``fig`` as PNG (bounding box around everything drawn, legends outside the axes included) without
    the version/timestamp metadata (stable bytes for DVC) and close it."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None}, bbox_inches="tight")
    plt.close(fig)


def _legend(ax, **kwargs) -> None:
    """The axes' legend outside its right edge (never over the data)."""
    handles = kwargs.pop("handles", None) or ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              frameon=False, ncol=1 if len(handles) <= 16 else 2, **kwargs)


def pareto_axes(ax, points: dict[str, tuple[float, float]], front: list[str], xlabel: str, ylabel: str,
                styles: dict[str, Style]) -> None:
    """Scatter of ``{name: (cost, quality)}``, a colour and marker per name in the legend; frontier points
    have a black edge and the frontier is drawn as a step line."""
    for name, (x, y) in sorted(points.items()):
        on = name in front
        ax.scatter([x], [y], s=60 if on else 36, color=styles[name].color, marker=styles[name].marker,
                   edgecolors="black" if on else "none", linewidths=1.2, zorder=3, label=name)
    if front:
        xs, ys = zip(*(points[n] for n in front))
        ax.step(xs, ys, where="post", color="black", lw=0.8, ls="--", label="Pareto frontier (black edge)",
                zorder=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    _legend(ax)


def speedup_axes(ax, table: pd.DataFrame, metric: str, front: list[str], xlabel: str,
                 styles: dict[str, Style]) -> None:
    """Metric against the interleaved speed-up, one point per variant (rows of
    :func:`pipeline.report.pareto.pareto`: ``speedup``, ``speedup_p10``, ``speedup_p90``, ``<metric>``) with a
    horizontal bar over its p10-p90 spread of per-round speed-ups; front points have a black edge and are
    joined fastest first; a dotted line marks 1x (the dense model's speed)."""
    for name, row in table.sort_index().iterrows():
        on = name in front
        x, y = float(row["speedup"]), float(row[metric])
        ax.errorbar([x], [y], xerr=[[x - float(row["speedup_p10"])], [float(row["speedup_p90"]) - x]], fmt="none",
                    ecolor=styles[name].color, elinewidth=1, capsize=2, zorder=2)
        ax.scatter([x], [y], s=60 if on else 36, color=styles[name].color, marker=styles[name].marker,
                   edgecolors="black" if on else "none", linewidths=1.2, zorder=3, label=name)
    if front:
        ax.plot(table.loc[front, "speedup"], table.loc[front, metric], color="black", lw=0.8, ls="--",
                label="Pareto front (black edge)", zorder=2)
    ax.axvline(1.0, color="grey", ls=":", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    _legend(ax)


def roc_axes(ax, curves: dict[str, dict], styles: dict[str, Style], zoom: float = 0.1) -> None:
    """ROC curves ``{variant: {"fpr", "tpr", "auc"}}`` with the chance diagonal, and an inset magnifying the
    low-false-positive region ``fpr <= zoom`` (where a detector is usually operated)."""
    inset = ax.inset_axes([0.45, 0.08, 0.52, 0.5])
    low, high = 1.0, 0.0
    for name, c in sorted(curves.items()):
        fpr, tpr = np.asarray(c["fpr"], dtype=float), np.asarray(c["tpr"], dtype=float)
        auc = "-" if c.get("auc") is None else f"{c['auc']:.3f}"
        kw = dict(color=styles[name].color, marker=styles[name].marker, markersize=3, lw=1,
                  markevery=max(1, len(fpr) // 10))
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc})", **kw)
        inset.plot(fpr, tpr, **kw)
        low = min(low, float(tpr[fpr <= zoom].min(initial=1.0)))
        high = max(high, float(np.interp(zoom, fpr, tpr)))
    for a in (ax, inset):
        a.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
        a.grid(alpha=0.3)
    inset.set_xlim(0, zoom)
    inset.set_ylim(max(0.0, low - 0.05), min(1.0, max(high, low) + 0.05))
    inset.tick_params(labelsize=6)
    inset.set_title(f"false positive rate <= {zoom:g}", fontsize=6)
    ax.indicate_inset_zoom(inset, edgecolor="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    _legend(ax)


def loss_axes(ax, curves: dict[str, list[dict[str, float]]], styles: dict[str, Style],
              ylabel: str = "training loss") -> None:
    """Logged values (``loss``) against step, one line (with markers) per ``stage/key`` log."""
    for name, rows in sorted(curves.items()):
        ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], lw=1, color=styles[name].color,
                marker=styles[name].marker, markersize=3, markevery=max(1, len(rows) // 12), label=name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    _legend(ax)


def _epoch_axis(ax, epochs: pd.Series) -> None:
    """An x axis of whole epochs: a tick per epoch (up to 20, else integer ticks), half an epoch of margin."""
    values = sorted({int(e) for e in epochs})
    if values and len(values) <= 20:
        ax.set_xticks(values)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if values:
        ax.set_xlim(values[0] - 0.5, values[-1] + 0.5)
    ax.set_xlabel("epoch")


def epoch_loss_axes(ax, epochs: pd.DataFrame, styles: dict[str, Style]) -> None:
    """Training loss (mean over the epoch's steps, solid) and validation loss (dashed, hollow markers) per
    epoch, a colour per run (:func:`pipeline.report.epochs.epoch_frame` rows)."""
    for run, rows in epochs.groupby("run", sort=True):
        st = styles[run]
        ax.plot(rows["epoch"], rows["train_loss"], color=st.color, marker=st.marker, lw=1, label=run)
        if "val_loss" in rows and rows["val_loss"].notna().any():
            valid = rows.dropna(subset=["val_loss"])
            ax.plot(valid["epoch"], valid["val_loss"], color=st.color, marker=st.marker, lw=1, ls="--",
                    markerfacecolor="none")
    kinds = [Line2D([], [], color="black", lw=1, label="training (epoch mean)"),
             Line2D([], [], color="black", lw=1, ls="--", marker="o", markerfacecolor="none", label="validation")]
    _epoch_axis(ax, epochs["epoch"])
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    _legend(ax, handles=handles + kinds)


def epoch_metric_axes(ax, epochs: pd.DataFrame, metric: str, styles: dict[str, Style],
                      baseline: tuple[str, float] | None = None) -> None:
    """``metric`` on the validation split per epoch, a line per run, against a horizontal line at the
    baseline's evaluated value ``(name, value)`` when given."""
    for run, rows in epochs.dropna(subset=[metric]).groupby("run", sort=True):
        ax.plot(rows["epoch"], rows[metric], color=styles[run].color, marker=styles[run].marker, lw=1, label=run)
    if baseline is not None:
        ax.axhline(baseline[1], color="black", ls=":", lw=1.2, label=f"{baseline[0]} (evaluated): {baseline[1]:.4g}")
    _epoch_axis(ax, epochs["epoch"])
    ax.set_ylabel(f"validation {metric}")
    ax.grid(alpha=0.3)
    _legend(ax)


def prf_axes(ax, scores: dict[str, tuple[float, float, float]]) -> None:
    """Grouped bars of ``{variant: (precision, recall, F1)}``: three bars per variant. The y axis starts
    just below the lowest bar so that differences of a point or two are visible (its ticks say where)."""
    names = sorted(scores)
    x, width = np.arange(len(names)), 0.27
    for i, (label, color, hatch) in enumerate(PRF):
        ax.bar(x + (i - 1) * width, [scores[n][i] for n in names], width, label=label, color=color, hatch=hatch,
               edgecolor="white", lw=0.5)
    values = [v for s in scores.values() for v in s if v is not None and np.isfinite(v)]
    if values:
        ax.set_ylim(max(0.0, np.floor((min(values) - 0.05) * 20) / 20), min(1.0, max(values) + 0.03))
    ax.set_xticks(x, names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("macro average over classes")
    ax.grid(alpha=0.3, axis="y")
    _legend(ax)


def bar_axes(ax, values: dict[str, float], ylabel: str, reference: float | None = None,
             styles: dict[str, Style] | None = None, labels: bool = False) -> None:
    """One bar per variant (e.g. measured speedup), in the variant's colour, with an optional reference
    line (1.0x) and, with ``labels``, each bar's value (3 significant digits) above it."""
    names = sorted(values)
    colors = [styles[n].color for n in names] if styles else "tab:blue"
    bars = ax.bar(range(len(names)), [values[n] for n in names], color=colors)
    if labels:
        ax.bar_label(bars, fmt="{:.3g}", fontsize=5, rotation=90, padding=2)
        ax.margins(y=0.15)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    if reference is not None:
        ax.axhline(reference, c="grey", ls="--", lw=0.8)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")


def key_metrics_figure(panels: dict[str, dict[str, float]], styles: dict[str, Style]):
    """Small multiples: one bar chart per key metric ``{title: {variant: value}}`` (units differ, so each
    has its own axis), the variants in the same order and colours in every panel."""
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.9 * cols, 3.1 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (title, values) in zip(axes.flat, panels.items()):
        bar_axes(ax, values, "", styles=styles, labels=True)
        ax.set_title(title, fontsize=8)
        ax.tick_params(axis="x", labelsize=6)
    fig.tight_layout()
    return fig


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


def single(draw: Callable, *args, size: tuple[float, float] = (6.0, 4.2)):
    """A one-axes figure drawn by ``draw(ax, *args)`` (no layout pass: :func:`save` crops to what is drawn)."""
    fig, ax = plt.subplots(figsize=size)
    draw(ax, *args)
    return fig


def grid_2x2(panels: list[tuple[str, Callable, tuple]]):
    """The paper figure: four ``(title, draw, args)`` panels, lettered (a)-(d), legends beside each panel."""
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    for ax, letter, (title, draw, args) in zip(axes.flat, "abcd", panels):
        draw(ax, *args)
        ax.set_title(f"({letter}) {title}", fontsize=9, loc="left")
    fig.tight_layout(w_pad=2.0)
    return fig
