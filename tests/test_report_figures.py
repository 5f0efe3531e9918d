"""Report figures as matplotlib objects: panels, legends instead of point labels, markers on one-point series,
distinct colours for many series, the ROC inset, grouped bars, the 2x2 figure."""

from __future__ import annotations

import matplotlib.colors as mcolors
import pandas as pd
import pytest
from PIL import Image

from pipeline.report import figures as fig
from pipeline.report.task_report import key_metrics, macro_prf
from pipeline.report.collect import frame

VARIANTS = [f"variant-{i:02d}" for i in range(12)]


def test_twelve_series_get_distinct_colours_and_markers_and_twenty_distinct_colours():
    styles = fig.series_styles(VARIANTS)
    assert len({s.color for s in styles.values()}) == 12 and len({s.marker for s in styles.values()}) == 12
    many = fig.series_styles(f"v{i}" for i in range(20))
    assert len({mcolors.to_hex(s.color) for s in many.values()}) == 20
    pairs = fig.series_styles(f"v{i}" for i in range(60))
    assert len({(s.color, s.marker) for s in pairs.values()}) == 60
    assert fig.series_styles(["b", "a"])["a"] == fig.series_styles(["a", "c", "b"])["a"]  # sorted: stable per name


def test_pareto_names_points_in_a_legend_not_on_the_plot():
    points = {n: (1.0 + i, 0.8 + 0.001 * i) for i, n in enumerate(VARIANTS)}
    points["variant-03"] = points["variant-02"]  # two points on top of each other
    styles = fig.series_styles(VARIANTS)
    figure = fig.single(fig.pareto_axes, points, ["variant-00", "variant-01"], "MB", "accuracy", styles)
    (ax,) = figure.axes
    assert len(ax.texts) == 0  # no text labels to overlap
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == sorted(VARIANTS) + ["Pareto frontier (black edge)"]
    colours = {mcolors.to_hex(c.get_facecolor()[0]) for c in ax.collections}
    assert len(colours) == 12  # every point its own colour, even the two that coincide
    assert len(ax.lines) == 1  # the frontier


def test_one_point_series_are_drawn_with_markers():
    epochs = pd.DataFrame({"run": ["distill/cls-heads", "finetune/cls", "finetune/cls"], "epoch": [1, 1, 2],
                           "step": [5, 10, 20], "train_loss": [0.3, 0.7, 0.4], "val_loss": [0.5, 0.6, None],
                           "accuracy": [0.8, 0.6, 0.7]})
    styles = fig.series_styles(epochs["run"])
    loss = fig.single(fig.epoch_loss_axes, epochs, styles).axes[0]
    one_epoch = [line for line in loss.lines if list(line.get_xdata()) == [1] and line.get_label() != "_nolegend_"]
    assert one_epoch and all(line.get_marker() not in (None, "None", "") for line in loss.lines)
    # training solid, validation dashed, same colour per run
    finetune = [line for line in loss.lines if line.get_color() == styles["finetune/cls"].color]
    assert sorted(line.get_linestyle() for line in finetune) == ["-", "--"]
    assert [t.get_text() for t in loss.get_legend().get_texts()][-2:] == ["training (epoch mean)", "validation"]
    assert list(loss.get_xticks()) == [1, 2] and loss.get_xlim() == (0.5, 2.5)  # whole epochs
    metric = fig.single(fig.epoch_metric_axes, epochs, "accuracy", styles, ("finetune", 0.75)).axes[0]
    assert all(line.get_marker() not in (None, "None", "") for line in metric.lines[:2])
    baseline = metric.lines[-1]
    assert list(baseline.get_ydata()) == [0.75, 0.75] and "finetune (evaluated): 0.75" in baseline.get_label()
    curves = {"finetune/cls": [{"step": 3.0, "loss": 0.5}]}  # one logged step
    steps = fig.single(fig.loss_axes, curves, fig.series_styles(curves)).axes[0]
    assert steps.lines[0].get_marker() not in (None, "None", "")


def test_roc_has_a_low_fpr_inset():
    curves = {"a": {"fpr": [0.0, 0.02, 0.05, 0.3, 1.0], "tpr": [0.0, 0.4, 0.6, 0.9, 1.0], "auc": 0.9},
              "b": {"fpr": [0.0, 0.1, 1.0], "tpr": [0.0, 0.3, 1.0], "auc": 0.6}}
    figure = fig.single(fig.roc_axes, curves, fig.series_styles(curves))
    (ax,) = figure.axes
    (inset,) = ax.child_axes
    assert inset.get_xlim() == (0.0, 0.1)
    low, high = inset.get_ylim()
    # from the lowest tpr in the region to the best tpr at fpr 0.1 (a: 0.6 + 0.3 * 0.05 / 0.25), + a margin
    assert low == pytest.approx(0.0) and high == pytest.approx(0.66 + 0.05)
    assert len(inset.lines) == 3 and len(ax.lines) == 3  # two curves and the diagonal in each
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a (AUC 0.900)", "b (AUC 0.600)"]


def test_precision_recall_f1_bars_per_variant():
    variants = frame([{"variant": "finetune", "macro_f1": 0.86, "precision_0": 0.9, "precision_1": 0.8,
                       "recall_0": 0.85, "recall_1": 0.87},
                      {"variant": "quantize", "macro_f1": 0.8, "precision_0": 0.7, "precision_1": 0.9,
                       "recall_0": 0.8, "recall_1": 0.8, "macro_precision": 0.75},
                      {"variant": "qa-like", "f1": 50.0}], index="variant")
    scores = macro_prf(variants)
    assert scores == {"finetune": pytest.approx((0.85, 0.86, 0.86)), "quantize": pytest.approx((0.75, 0.8, 0.8))}
    ax = fig.single(fig.prf_axes, scores).axes[0]
    assert len(ax.containers) == 3 and all(len(c) == 2 for c in ax.containers)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["precision", "recall", "F1"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["finetune", "quantize"]
    assert [bar.get_height() for bar in ax.containers[1]] == pytest.approx([0.86, 0.8])


def test_key_metrics_one_panel_per_measured_metric():
    variants = frame([{"variant": "finetune", "primary_metric": "f1", "f1": 55.0, "exact_match": 40.0,
                       "size_bytes": 4_000_000, "latency_ms_p50": 10.0, "cpu_large_peak_rss_mb": 300.0},
                      {"variant": "quantize", "primary_metric": "f1", "f1": 54.0, "exact_match": 39.0,
                       "size_bytes": 1_000_000, "latency_ms_p50": 5.0, "speedup": 2.0}], index="variant")
    panels = key_metrics(variants, "f1")
    assert list(panels) == ["f1", "exact match", "weights on disk (MB)", "latency p50, large batch (ms)",
                            "speedup vs finetune (x)", "CPU peak RSS, large batch (MB)"]
    assert panels["weights on disk (MB)"] == {"finetune": 4.0, "quantize": 1.0}
    assert panels["speedup vs finetune (x)"] == {"quantize": 2.0}  # unmeasured: no bar, not zero
    figure = fig.key_metrics_figure(panels, fig.series_styles(["finetune", "quantize"]))
    shown = [ax for ax in figure.axes if ax.axison]
    assert [ax.get_title() for ax in shown] == list(panels)
    assert [len(ax.patches) for ax in shown] == [2, 2, 2, 2, 1, 1]


def test_paper_figure_has_four_lettered_panels(tmp_path):
    styles = fig.series_styles(["a", "b"])
    points = {"a": (1.0, 0.8), "b": (2.0, 0.9)}
    panels = [("size", fig.pareto_axes, (points, ["a", "b"], "MB", "acc", styles)),
              ("latency", fig.pareto_axes, (points, ["a", "b"], "ms", "acc", styles)),
              ("non-zero", fig.bar_axes, ({"a": 10, "b": 20}, "non-zero")),
              ("speedup", fig.bar_axes, ({"a": 1.0, "b": 1.5}, "x", 1.0, styles))]
    figure = fig.grid_2x2(panels)
    assert [ax.get_title(loc="left") for ax in figure.axes] == ["(a) size", "(b) latency", "(c) non-zero",
                                                                 "(d) speedup"]
    fig.save(figure, tmp_path / "paper.png")
    with Image.open(tmp_path / "paper.png") as im:
        assert im.format == "PNG" and im.size[0] > 1000 and im.size[1] > 700
