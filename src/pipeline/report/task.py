"""One task's report directory: the data behind each plot, the figures drawn from it, and the model card."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.report.card import model_card
from pipeline.report.plotdata import (binary_rocs, confusion_frame, confusion_matrices, curves_frame, layers_frame,
                                      roc_frame, write_csv)
from pipeline.report.tables import BASELINE, measured, pareto, primary_metric


@dataclass
class TaskData:
    """What one task's plots show, gathered once for the data files, the figures and the model card."""

    metric: str
    """The task's primary metric (``accuracy``, ``f1``, ...)."""
    pareto: pd.DataFrame
    """Metric, size and latency per variant with frontier flags (:func:`pipeline.report.tables.pareto`)."""
    fronts: dict[str, list[str]]
    """Pareto-optimal variants by cost: ``{"size": [...], "latency": [...]}``."""
    speedups: dict[str, float]
    """Measured CPU speedup against ``finetune`` of the variants that have one."""
    nonzero: dict[str, int]
    """Non-zero parameters per variant."""
    layers: pd.DataFrame
    """Long per-layer facts (:func:`pipeline.report.plotdata.layers_frame`)."""
    rocs: dict[str, dict]
    """Binary ROC curves with AUC per variant (empty unless binary classification)."""
    matrices: dict[str, list[list[int]]]
    """Confusion matrices per variant (empty without classes)."""
    curves: dict[str, list]
    """Training-loss curves of the task's runs."""
    evals: dict[str, list]
    """Validation metrics logged during training."""

    def points(self, cost: str) -> dict[str, tuple[float, float]]:
        """``{variant: (cost, metric)}`` for the Pareto plots; ``cost`` is ``size_mb`` or ``latency_ms_p50``."""
        return {n: (float(c), float(q)) for n, c, q in zip(self.pareto.index, self.pareto[cost],
                                                            self.pareto[self.metric])}


def gather(variants: pd.DataFrame, details: dict[str, dict], curves: dict[str, list],
           evals: dict[str, list] | None) -> TaskData:
    """Collect one task's plot data from its metrics frame, details and training logs."""
    table, fronts = pareto(variants)
    speedups = variants["speedup"] if "speedup" in variants else pd.Series(dtype=float)
    return TaskData(metric=primary_metric(variants), pareto=table, fronts=fronts,
                    speedups={n: float(v) for n, v in speedups.items() if measured(v)},
                    nonzero={n: int(v) for n, v in variants["nonzero_params"].items() if measured(v)},
                    layers=layers_frame(details), rocs=binary_rocs(details), matrices=confusion_matrices(details),
                    curves=curves, evals=evals or {})


def write_data(root: Path, data: TaskData) -> None:
    """The numbers behind every plot as CSV under ``root`` (long format, a ``variant`` column where the rows
    are variants): ``pareto``, ``speedup``, ``layers``, ``roc`` (binary classification), ``confusion``
    (classification), ``loss`` and ``eval_during_training`` (when training logs exist)."""
    write_csv(data.pareto.reset_index(), root / "pareto.csv")
    write_csv(pd.DataFrame({"variant": list(data.speedups), "speedup": list(data.speedups.values())}),
              root / "speedup.csv")
    optional = ((data.layers, "layers"), (roc_frame(data.rocs), "roc"),
                (confusion_frame(data.matrices), "confusion"), (curves_frame(data.curves, "loss"), "loss"),
                (curves_frame(data.evals, "value"), "eval_during_training"))
    for table, name in optional:
        if not table.empty:
            write_csv(table, root / f"{name}.csv")


def draw_figures(root: Path, data: TaskData) -> dict[str, str]:
    """PNG figures under ``root``: metric vs size and vs latency with the Pareto frontier, ROC curves and
    confusion matrices (classification), training loss and validation metrics (when logged), and
    ``paper_2x2.png`` combining four panels.

    Returns:
        ``{figure title: path relative to root's parent}``.
    """
    from pipeline.report import figures as fig  # local: matplotlib only where figures are drawn

    m = data.metric
    pareto_panels = {
        "size": (f"{m} vs size", fig.pareto_axes,
                 (data.points("size_mb"), data.fronts["size"], "weights on disk (MB)", m)),
        "latency": (f"{m} vs latency", fig.pareto_axes,
                    (data.points("latency_ms_p50"), data.fronts["latency"], "CPU latency p50, large batch (ms)", m)),
    }
    drawn = {f"pareto_{key}": (title, fig.single(draw, *args)) for key, (title, draw, args) in pareto_panels.items()}
    if data.rocs:
        drawn["roc"] = ("ROC curves", fig.single(fig.roc_axes, data.rocs))
    if data.matrices:
        drawn["confusion"] = ("confusion matrices", fig.confusion_figure(data.matrices))
    if data.curves:
        drawn["loss"] = ("training loss", fig.single(fig.loss_axes, data.curves))
    if data.evals:
        drawn["eval_during_training"] = ("validation metrics during training",
                                         fig.single(fig.loss_axes, data.evals, "validation metric"))
    panels = [pareto_panels["size"], pareto_panels["latency"],
              ("ROC curves", fig.roc_axes, (data.rocs,)) if data.rocs else
              ("non-zero parameters", fig.bar_axes, (data.nonzero, "non-zero parameters")),
              ("training loss", fig.loss_axes, (data.curves,)) if data.curves else
              (f"CPU speedup vs {BASELINE}", fig.bar_axes, (data.speedups, "speedup (x)", 1.0))]
    drawn["paper_2x2"] = ("combined 2x2 (paper)", fig.grid_2x2(panels))
    figures = {}
    for name, (title, figure) in drawn.items():
        fig.save(figure, root / f"{name}.png")
        figures[title] = f"{root.name}/{name}.png"
    return figures


def task_report(out: Path, task: str, variants: pd.DataFrame, details: dict[str, dict], curves: dict[str, list],
                evals: dict[str, list] | None = None) -> dict[str, str]:
    """Write ``out/<task>/``: ``data/*.csv`` (the numbers behind each plot), ``figures/*.png`` and ``MODEL_CARD.md``.

    Args:
        out: the report directory.
        task: the task's name.
        variants: flat metrics, a row per variant (:func:`pipeline.report.collect.collect`).
        details: ``{variant: details JSON}`` (may lack variants).
        curves: training-loss curves (:func:`pipeline.report.collect.loss_curves`).
        evals: validation metrics logged during training (:func:`pipeline.report.collect.eval_curves`).

    Returns:
        ``{figure title: path relative to out/<task>}``.
    """
    root = out / task
    data = gather(variants, details, curves, evals)
    write_data(root / "data", data)
    figures = draw_figures(root / "figures", data)
    card = model_card(task, variants, details, data.layers, figures, curves, data.fronts)
    (root / "MODEL_CARD.md").write_text(card)
    return figures
