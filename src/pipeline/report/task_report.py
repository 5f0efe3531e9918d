"""One task's report directory: the data behind each plot, the figures drawn from it, and the model card."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.report.card import CardInputs, model_card
from pipeline.report.epochs import KEYS, run_variant
from pipeline.report.pareto import pareto
from pipeline.report.plotdata import (binary_rocs, confusion_frame, confusion_matrices, curves_frame, layers_frame,
                                      roc_frame, write_csv)
from pipeline.report.tables import BASELINE, measured, primary_metric

# (metrics column, panel title, scale) of the key-metrics figure, after the primary metric; a column no variant
# has measured gets no panel.
KEY_METRICS = (
    ("accuracy", "accuracy", 1), ("f1", "F1", 1), ("exact_match", "exact match", 1), ("exact", "exact match", 1),
    ("macro_f1", "macro F1", 1), ("auc", "ROC AUC", 1), ("size_bytes", "weights on disk (MB)", 1e-6),
    ("nonzero_params", "non-zero parameters (millions)", 1e-6), ("cpu_bs1_p50_ms", "CPU latency p50, batch 1 (ms)", 1),
    ("latency_ms_p50", "latency p50, large batch (ms)", 1), ("speedup", f"speedup vs {BASELINE} (x)", 1),
    ("cpu_large_peak_rss_mb", "CPU peak RSS, large batch (MB)", 1),
    ("cuda_large_max_allocated_mb", "CUDA max allocated, large batch (MB)", 1),
)

# The figures in the order the card lists them (each drawn when its data exist).
FIGURE_ORDER = ("pareto_size", "pareto_speedup", "key_metrics", "precision_recall_f1", "roc", "confusion", "loss",
                "loss_per_epoch", "metric_per_epoch", "paper_2x2")


@dataclass
class TaskData:
    """What one task's plots show, gathered once for the data files, the figures and the model card."""

    task: str
    """The task's name (runs ``<stage>/<task>[-<key>]`` belong to it)."""
    metric: str
    """The task's primary metric (``accuracy``, ``f1``, ...)."""
    pareto: pd.DataFrame
    """Metric, size and interleaved speed-up (with its spread) per variant with front flags
    (:func:`pipeline.report.pareto.pareto`)."""
    fronts: dict[str, list[str]]
    """Pareto-optimal variants: ``{"size": [...] by size, "speedup": [...] fastest first}``."""
    speedups: dict[str, float]
    """Measured speedup against ``finetune`` (on each variant's timing device) of the variants that have one."""
    nonzero: dict[str, int]
    """Non-zero parameters per variant."""
    layers: pd.DataFrame
    """Long per-layer facts (:func:`pipeline.report.plotdata.layers_frame`)."""
    rocs: dict[str, dict]
    """Binary ROC curves with AUC per variant (empty unless binary classification)."""
    matrices: dict[str, list[list[int]]]
    """Confusion matrices per variant (empty without classes)."""
    curves: dict[str, list]
    """Training-loss curves of the task's runs, per optimizer step."""
    evals: dict[str, list]
    """Validation metrics logged during training, per epoch at its last step."""
    epochs: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=[*KEYS, "train_loss"]))
    """Per-epoch training and validation records (:func:`pipeline.report.epochs.epoch_frame`)."""
    prf: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    """Macro ``(precision, recall, F1)`` per classification variant (:func:`macro_prf`)."""
    key_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    """``{panel title: {variant: value}}`` of the key-metrics figure (:func:`key_metrics`)."""
    baseline: float | None = None
    """The primary metric ``finetune`` was evaluated at (the reference line of the per-epoch plot)."""

    def points(self, cost: str) -> dict[str, tuple[float, float]]:
        """``{variant: (cost, metric)}`` for the Pareto plots; ``cost`` is ``size_mb`` or ``latency_ms_p50``."""
        return {n: (float(c), float(q)) for n, c, q in zip(self.pareto.index, self.pareto[cost],
                                                            self.pareto[self.metric])}

    def runs(self) -> list[str]:
        """The training runs (``<stage>/<key>``) any figure draws."""
        return sorted(set(self.curves) | set(self.epochs["run"]) | {name.split(" ")[0] for name in self.evals})

    def styles(self, series_styles) -> dict:
        """``{variant or run: style}`` from ``series_styles(names)``: one style per variant (evaluated, or made by
        a run), and each run drawn in the style of the variant it made."""
        made = {run: run_variant(run, self.task) for run in self.runs()}
        styles = series_styles(set(self.pareto.index) | set(self.nonzero) | set(self.rocs) | set(made.values()))
        return styles | {run: styles[variant] for run, variant in made.items()}


def macro_prf(variants: pd.DataFrame) -> dict[str, tuple[float, float, float]]:
    """``{variant: (precision, recall, F1)}`` macro-averaged over classes, for variants with per-class scores.

    Precision and recall: ``macro_precision``/``macro_recall`` when recorded, else the unweighted mean of the
    evaluate stage's per-class ``precision_<c>``/``recall_<c>`` (scikit-learn's ``average="macro"``); F1: its
    ``macro_f1`` (the mean of the per-class F1, not the F1 of the two means).
    """
    out = {}
    for name, row in variants.iterrows():
        means = []
        for key in ("precision", "recall"):
            per_class = [row[c] for c in variants.columns if c.startswith(f"{key}_") and c[len(key) + 1:].isdigit()]
            recorded = row.get(f"macro_{key}")
            means.append(float(recorded) if measured(recorded) else
                         float(sum(per_class) / len(per_class)) if per_class and all(map(measured, per_class))
                         else None)
        if all(v is not None for v in means) and measured(row.get("macro_f1")):
            out[str(name)] = (means[0], means[1], float(row["macro_f1"]))
    return out


def key_metrics(variants: pd.DataFrame, metric: str) -> dict[str, dict[str, float]]:
    """Panels of the key-metrics figure: the primary metric, then :data:`KEY_METRICS` (those measured)."""
    columns = [(metric, metric, 1)] + [k for k in KEY_METRICS if k[0] != metric]
    panels = {}
    for column, title, scale in columns:
        if column in variants:
            values = {str(n): float(v) * scale for n, v in variants[column].items() if measured(v)}
            if values and title not in panels:
                panels[title] = values
    return panels


def gather(task: str, variants: pd.DataFrame, details: dict[str, dict], curves: dict[str, list],
           evals: dict[str, list] | None, epochs: pd.DataFrame | None = None) -> TaskData:
    """Collect one task's plot data from its metrics frame, details and training logs."""
    table, fronts = pareto(variants)
    metric = primary_metric(variants)
    speedups = variants["speedup"] if "speedup" in variants else pd.Series(dtype=float)
    base = variants.at[BASELINE, metric] if BASELINE in variants.index else None
    return TaskData(task=task, metric=metric, pareto=table, fronts=fronts,
                    speedups={n: float(v) for n, v in speedups.items() if measured(v)},
                    nonzero={n: int(v) for n, v in variants["nonzero_params"].items() if measured(v)},
                    layers=layers_frame(details), rocs=binary_rocs(details), matrices=confusion_matrices(details),
                    curves=curves, evals=evals or {},
                    epochs=epochs if epochs is not None else pd.DataFrame(columns=[*KEYS, "train_loss"]),
                    prf=macro_prf(variants), key_metrics=key_metrics(variants, metric),
                    baseline=float(base) if measured(base) else None)


def write_data(root: Path, data: TaskData) -> None:
    """The numbers behind every plot as CSV under ``root`` (long format, a ``variant`` column where the rows
    are variants): ``pareto``, ``speedup``, ``layers``, ``roc`` (binary classification), ``confusion``
    (classification), ``loss``, ``eval_during_training`` and ``epochs`` (when training logs exist)."""
    write_csv(data.pareto.reset_index(), root / "pareto.csv")
    write_csv(pd.DataFrame({"variant": list(data.speedups), "speedup": list(data.speedups.values())}),
              root / "speedup.csv")
    optional = ((data.layers, "layers"), (roc_frame(data.rocs), "roc"),
                (confusion_frame(data.matrices), "confusion"), (curves_frame(data.curves, "loss"), "loss"),
                (curves_frame(data.evals, "value"), "eval_during_training"), (data.epochs, "epochs"))
    for table, name in optional:
        if not table.empty:
            write_csv(table, root / f"{name}.csv")


def _figures(data: TaskData, fig, styles) -> dict[str, tuple[str, object]]:
    """``{file stem: (title, Figure)}`` of every figure the data allow, but the 2x2."""
    m = data.metric
    drawn = {key: (title, fig.single(draw, *args)) for key, (title, draw, args) in _panels(data, fig, styles).items()}
    if data.matrices:
        drawn["confusion"] = ("confusion matrices", fig.confusion_figure(data.matrices))
    if data.prf:
        drawn["precision_recall_f1"] = ("precision, recall and F1 per variant (macro)",
                                        fig.single(fig.prf_axes, data.prf, size=(7.5, 4.2)))
    if data.key_metrics:
        drawn["key_metrics"] = ("key metrics per variant", fig.key_metrics_figure(data.key_metrics, styles))
    if data.curves:
        drawn["loss"] = ("training loss per step", fig.single(fig.loss_axes, data.curves, styles))
    if m in data.epochs:
        base = (BASELINE, data.baseline) if data.baseline is not None else None
        drawn["metric_per_epoch"] = (f"validation {m} per epoch vs {BASELINE}",
                                     fig.single(fig.epoch_metric_axes, data.epochs, m, styles, base))
    return drawn


def _panels(data: TaskData, fig, styles) -> dict[str, tuple[str, object, tuple]]:
    """The one-axes views the 2x2 figure reuses: ``{file stem: (title, draw, args)}``."""
    m = data.metric
    panels = {
        "pareto_size": (f"{m} vs size", fig.pareto_axes,
                        (data.points("size_mb"), data.fronts["size"], "weights on disk (MB)", m, styles)),
        "pareto_speedup": (f"{m} vs speed-up (interleaved)", fig.speedup_axes,
                           (data.pareto.dropna(subset=["speedup"]), m, data.fronts["speedup"],
                            f"speed-up vs {BASELINE}, large batch (x; bars: p10-p90 of rounds)", styles)),
    }
    if data.rocs:
        panels["roc"] = ("ROC curves", fig.roc_axes, (data.rocs, styles))
    if not data.epochs.empty:
        panels["loss_per_epoch"] = ("training and validation loss per epoch", fig.epoch_loss_axes,
                                    (data.epochs, styles))
    return panels


def draw_figures(root: Path, data: TaskData) -> dict[str, str]:
    """PNG figures under ``root``: metric vs size and vs latency with the Pareto frontier; for classification
    ROC curves (with a low-FPR inset), confusion matrices and macro precision/recall/F1 bars; key metrics per
    variant; training loss per step, training and validation loss per epoch and the primary metric per epoch
    against ``finetune`` (when logged); and ``paper_2x2.png`` combining four panels.

    Returns:
        ``{figure title: path relative to root's parent}``.
    """
    from pipeline.report import figures as fig  # local: matplotlib only where figures are drawn

    styles = data.styles(fig.series_styles)
    drawn = _figures(data, fig, styles)
    panels = _panels(data, fig, styles)
    third = panels.get("roc") or ("non-zero parameters", fig.bar_axes, (data.nonzero, "non-zero parameters", None,
                                                                        styles))
    fourth = panels.get("loss_per_epoch") or (
        ("training loss per step", fig.loss_axes, (data.curves, styles)) if data.curves else
        (f"speedup vs {BASELINE}", fig.bar_axes, (data.speedups, "speedup (x)", 1.0, styles)))
    drawn["paper_2x2"] = ("combined 2x2 (paper)", fig.grid_2x2([panels["pareto_size"], panels["pareto_speedup"],
                                                                 third, fourth]))
    figures = {}
    for name, (title, figure) in sorted(drawn.items(), key=lambda item: FIGURE_ORDER.index(item[0])):
        fig.save(figure, root / f"{name}.png")
        figures[title] = f"{root.name}/{name}.png"
    return figures


def task_report(out: Path, task: str, variants: pd.DataFrame, details: dict[str, dict], curves: dict[str, list],
                evals: dict[str, list] | None = None, inputs: CardInputs | None = None) -> dict[str, str]:
    """Write ``out/<task>/``: ``data/*.csv`` (the numbers behind each plot), ``figures/*.png`` and ``MODEL_CARD.md``.

    Args:
        out: the report directory.
        task: the task's name.
        variants: flat metrics, a row per variant (:func:`pipeline.report.collect.collect`).
        details: ``{variant: details JSON}`` (may lack variants).
        curves: training-loss curves (:func:`pipeline.report.collect.loss_curves`).
        evals: validation metrics logged during training (:func:`pipeline.report.collect.eval_curves`).
        inputs: what else the card shows: per-epoch records, the data, cited numbers (:class:`CardInputs`).

    Returns:
        ``{figure title: path relative to out/<task>}``.
    """
    inputs = inputs or CardInputs()
    root = out / task
    data = gather(task, variants, details, curves, evals, inputs.epochs)
    write_data(root / "data", data)
    figures = draw_figures(root / "figures", data)
    card = model_card(task, variants, details, data.layers, figures, data.fronts, inputs, logged=bool(curves))
    (root / "MODEL_CARD.md").write_text(card)
    return figures
