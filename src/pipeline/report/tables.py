"""The report's tables (pandas): every variant against the fine-tuned baseline, Pareto fronts, markdown."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from pipeline.core.errors import PipelineError

BASELINE = "finetune"
# (column, format) of the summary table; the metric cell is prefixed with the metric's name.
COLUMNS = (
    ("metric", "{:.4g}"),
    ("vs_baseline", "{:+.4g}"),
    ("size_mb", "{:.3f}"),
    ("size_ratio", "{:.2f}x"),
    ("params", "{:,}"),
    ("nonzero_params", "{:,}"),
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


def summary(variants: pd.DataFrame) -> pd.DataFrame:
    """One task's summary: each variant's metric, size, parameters, latency and change against the baseline.

    Args:
        variants: flat metrics, a row per variant.

    Returns:
        a frame indexed by variant: ``metric_name``, ``metric``, ``size_mb``, ``params``, ``nonzero_params``,
        ``latency_ms_p50``, ``speedup`` and, when ``finetune`` was evaluated, ``vs_baseline`` (metric
        difference) and ``size_ratio`` (baseline size / variant size). The speedup is the one the evaluate
        stage measured interleaved with the baseline (``speedup``) when present, else the ratio of the two
        stored latencies; NA where neither exists.
    """
    metric = primary_metric(variants)
    out = pd.DataFrame({"metric_name": metric, "metric": variants[metric],
                        "size_mb": variants["size_bytes"] / 1e6}, index=variants.index)
    for column in ("params", "nonzero_params", "latency_ms_p50", "speedup"):
        out[column] = variants[column] if column in variants else np.nan
    if BASELINE in variants.index:
        base = variants.loc[BASELINE]
        out["vs_baseline"] = variants[metric] - base[metric]
        out["size_ratio"] = base["size_bytes"] / variants["size_bytes"]
        out["speedup"] = out["speedup"].fillna(base["latency_ms_p50"] / variants["latency_ms_p50"])
    return out


def summarize(results: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """:func:`summary` of every task: ``{task: summary frame}``."""
    return {task: summary(variants) for task, variants in results.items()}


def records(table: pd.DataFrame) -> list[dict]:
    """Rows of ``table`` as JSON-ready dicts (``variant`` plus the measured values only; plain Python types)."""
    return [{"variant": name, **{k: v for k, v in row.items() if measured(v)}}
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
