"""The report's tables (pandas): every variant against the fine-tuned baseline, Pareto fronts, markdown."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from pipeline.core.errors import PipelineError

BASELINE = "finetune"
# Significant digits, for quantities whose size varies by orders of magnitude (a logit error of 2e-6 or 0.05):
# fixed decimals would print the small ones as 0.000.
SIG = "{:.3g}"
# (column, format) of the summary table, one format per column; the metric cell is prefixed with the metric's name.
COLUMNS = (
    ("metric", "{:.4f}"),
    ("vs_baseline", "{:+.4f}"),
    ("size_mb", "{:.3f}"),
    ("size_ratio", "{:.2f}x"),
    ("params", "{:,}"),
    ("nonzero_params", "{:,}"),
    ("quantization_zeros", "{:,}"),
    ("latency_ms_p50", "{:.2f}"),
    ("speedup", "{:.2f}x"),
)


def measured(value) -> bool:
    """Whether ``value`` holds a measurement: not missing (None, NaN, NA) and, for a number, finite."""
    if value is None or value is pd.NA:
        return False
    if isinstance(value, (float, np.floating)):
        return math.isfinite(value)
    return True


def fmt(value, spec: str) -> str:
    """``spec.format(value)``, or ``-`` for a value that was not measured."""
    return spec.format(value) if measured(value) else "-"


def cells(frame: pd.DataFrame, columns: Iterable[tuple[str, str, str]]) -> pd.DataFrame:
    """Formatted text cells of ``frame``, same index.

    Args:
        frame: the numbers, a row per variant.
        columns: ``(header, column of frame, format)``; a column the frame lacks gives ``-`` everywhere.

    Returns:
        a frame of strings with the headers as columns.
    """
    out = pd.DataFrame(index=frame.index)
    for header, column, spec in columns:
        values = frame[column] if column in frame else pd.Series(None, index=frame.index, dtype=object)
        out[header] = [fmt(v, spec) for v in values]
    return out


def markdown_table(table: pd.DataFrame) -> list[str]:
    """The lines of a markdown table of text cells: the index (its name as header) first, then each column."""
    lines = [f"| {table.index.name or ''} | " + " | ".join(map(str, table.columns)) + " |",
             "|---" * (len(table.columns) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(map(str, row)) + " |" for name, row in zip(table.index, table.values)]
    return lines


def primary_metric(variants: pd.DataFrame) -> str:
    """The task's primary metric (``primary_metric`` column), which every variant must share."""
    names = variants["primary_metric"].unique()
    if len(names) != 1:
        raise PipelineError(f"variants disagree on primary_metric: {sorted(map(str, names))}")
    return str(names[0])


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """Names on the Pareto frontier of ``{name: (cost, quality)}``: lower cost and higher quality are better.

    A point is on the frontier when no other point is at least as good in both and better in one.

    Returns:
        frontier names sorted by increasing cost.
    """
    front = []
    for name, (cost, quality) in points.items():
        dominated = any(c <= cost and q >= quality and (c < cost or q > quality)
                        for other, (c, q) in points.items() if other != name)
        if not dominated:
            front.append(name)
    return sorted(front, key=lambda n: (points[n][0], -points[n][1]))


def pareto(variants: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """The metric against size and against large-batch latency (each variant's timing device), with each Pareto
    frontier.

    Args:
        variants: flat metrics, a row per variant (:func:`pipeline.report.collect.collect`).

    Returns:
        ``(table, fronts)``: table indexed by variant with columns ``<metric>``, ``size_mb``,
        ``latency_ms_p50``, ``size_front``, ``latency_front`` (1 on the frontier, else 0; variants without a
        measured metric or cost are left out); fronts ``{"size": [...], "latency": [...]}`` sorted by cost.
    """
    metric = primary_metric(variants)
    table = pd.DataFrame({metric: variants[metric], "size_mb": variants["size_bytes"] / 1e6,
                          "latency_ms_p50": variants["latency_ms_p50"]})
    table = table[[all(measured(v) for v in row) for row in table.values]]
    fronts = {}
    for key, cost in (("size", "size_mb"), ("latency", "latency_ms_p50")):
        fronts[key] = pareto_front({n: (float(c), float(q)) for n, c, q in zip(table.index, table[cost],
                                                                               table[metric])})
        table[f"{key}_front"] = [int(n in fronts[key]) for n in table.index]
    return table, fronts


def baseline_first(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the :data:`BASELINE` row first and the other rows in their order (names sorted by
    :func:`pipeline.report.collect.frame`)."""
    order = [n for n in frame.index if n == BASELINE] + [n for n in frame.index if n != BASELINE]
    return frame.loc[order]


def quantization_zeros(variants: pd.DataFrame) -> pd.Series:
    """Per variant, the prunable weights that quantization rounding set to zero (a count: the evaluate stage's
    ``quantization_zero_fraction`` times ``prunable_params``); NA where either was not recorded."""
    if "quantization_zero_fraction" not in variants or "prunable_params" not in variants:
        return pd.Series(pd.NA, index=variants.index, dtype="Int64")
    counts = (variants["quantization_zero_fraction"].astype(float) * variants["prunable_params"].astype(float))
    return counts.round().astype("Int64")


def summary(variants: pd.DataFrame) -> pd.DataFrame:
    """One task's summary: each variant's metric, size, parameters, latency and change against the baseline.

    Args:
        variants: flat metrics, a row per variant.

    Returns:
        a frame indexed by variant, :data:`BASELINE` first: ``metric_name``, ``metric``, ``size_mb``, ``params``,
        ``nonzero_params`` (the weights that were not pruned: zeros that quantization rounding added are not
        counted as pruned), ``quantization_zeros`` (those rounding zeros, :func:`quantization_zeros`),
        ``latency_ms_p50``, ``speedup`` and, when ``finetune`` was evaluated, ``vs_baseline`` (metric
        difference) and ``size_ratio`` (baseline size / variant size). The speedup is the one the evaluate
        stage measured interleaved with the baseline (``speedup``) when present, else the ratio of the two
        stored latencies; NA where neither exists.
    """
    variants = baseline_first(variants)
    metric = primary_metric(variants)
    out = pd.DataFrame({"metric_name": metric, "metric": variants[metric],
                        "size_mb": variants["size_bytes"] / 1e6}, index=variants.index)
    for column in ("params", "nonzero_params", "latency_ms_p50", "speedup"):
        out[column] = variants[column] if column in variants else np.nan
    out["quantization_zeros"] = zeros = quantization_zeros(variants)
    if "nonzero_params" in variants:
        out["nonzero_params"] = variants["nonzero_params"].astype("Int64") + zeros.fillna(0)
    if BASELINE in variants.index:
        base = variants.loc[BASELINE]
        out["vs_baseline"] = variants[metric] - base[metric]
        out["size_ratio"] = base["size_bytes"] / variants["size_bytes"]
        out["speedup"] = out["speedup"].fillna(base["latency_ms_p50"] / variants["latency_ms_p50"])
    return out


def summarize(results: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """:func:`summary` of every task: ``{task: summary frame}``."""
    return {task: summary(variants) for task, variants in results.items()}


def _plain(value):
    """A numpy scalar as the Python number it holds (``json`` refuses numpy integers)."""
    return value.item() if isinstance(value, np.generic) else value


def records(table: pd.DataFrame) -> list[dict]:
    """Rows of ``table`` as JSON-ready dicts (``variant`` plus the measured values only; plain Python types)."""
    return [{"variant": name, **{k: _plain(v) for k, v in row.items() if measured(v)}}
            for name, row in table.to_dict("index").items()]


def markdown(tables: dict[str, pd.DataFrame]) -> str:
    """A markdown page with one table per task (:func:`summary`; only measured values, missing ones '-')."""
    lines = ["# Compression summary", "", "All numbers are measured by the evaluate stage of this run.", ""]
    for task, table in tables.items():
        text = cells(table, ((column, column, spec) for column, spec in COLUMNS))
        text["metric"] = table["metric_name"] + " " + text["metric"]
        lines += [f"## {task}", "", f"Model card: [{task}/MODEL_CARD.md]({task}/MODEL_CARD.md)", ""]
        lines += markdown_table(text.rename_axis("variant")) + [""]
    return "\n".join(lines)
