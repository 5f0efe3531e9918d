"""Pareto fronts of the report: the primary metric against size and against the measured speed-up.

Speed is compared through the speed-up each evaluate stage measured *interleaved* against the dense baseline
(:mod:`pipeline.evaluation.speed`: call ``i`` of the variant and of the baseline back to back, the median of the
per-round ratios ``baseline / variant``), not through absolute latencies: those come from different stages
run at different moments on a machine whose load changes, so two variants of identical compute can differ
by 1.6x in p50 latency while their interleaved speed-ups agree. The spread of the per-round ratios
(``speedup_p10``..``speedup_p90``) says how sure a speed-up is: two variants whose spreads overlap are equally
fast here, so neither is faster than the other on the front (:func:`faster`).
"""

from __future__ import annotations

import pandas as pd

from pipeline.report.tables import measured, pareto_front, primary_metric

SPREAD = ("speedup_p10", "speedup_p90")
"""The headline speed-up's spread (timing device, large batch), written by the evaluate stage."""


def speedup_table(variants: pd.DataFrame, prefix: str = "") -> pd.DataFrame:
    """Each variant's speed-up and its spread: ``speedup``, ``speedup_p10``, ``speedup_p90``.

    Args:
        variants: flat metrics, a row per variant (:func:`pipeline.report.collect.collect`).
        prefix: ``""`` for the headline numbers (timing device, large batch), or a device and batch label
            such as ``"cpu_bs1_"`` for ``cpu_bs1_speedup``, ``cpu_bs1_speedup_p10``, ``cpu_bs1_speedup_p90``.

    Returns:
        a frame indexed by variant, only variants with a measured speed-up; a speed file written before the
        spread was recorded gives a spread of zero width (the speed-up itself at both ends).
    """
    column = f"{prefix}speedup"
    if column not in variants:
        return pd.DataFrame(columns=["speedup", *SPREAD], dtype=float)
    rows = {}
    for name, row in variants.iterrows():
        if measured(row[column]):
            ends = [row.get(f"{column}_{q}") for q in ("p10", "p90")]
            low, high = (float(e) if measured(e) else float(row[column]) for e in ends)
            rows[name] = {"speedup": float(row[column]), "speedup_p10": low, "speedup_p90": high}
    return pd.DataFrame.from_dict(rows, orient="index", columns=["speedup", *SPREAD]).rename_axis("variant")


def faster(a: pd.Series, b: pd.Series) -> bool:
    """Whether ``a`` is faster than ``b`` beyond the spread: ``a``'s 10th percentile of per-round speed-ups is
    above ``b``'s 90th (their spreads do not overlap). Rows of :func:`speedup_table`."""
    return a["speedup_p10"] > b["speedup_p90"]


def speedup_front(speed: pd.DataFrame, metric: pd.Series) -> list[str]:
    """Variants no other variant beats: none is at least as good in the metric and faster beyond the spread
    (:func:`faster`), or equally fast within it and better in the metric.

    Args:
        speed: :func:`speedup_table` rows.
        metric: the primary metric of the same variants (higher is better).

    Returns:
        front names, fastest (median speed-up) first.
    """
    def beats(a: str, b: str) -> bool:
        quicker, level = faster(speed.loc[a], speed.loc[b]), not faster(speed.loc[b], speed.loc[a])
        return metric[a] >= metric[b] and (quicker or (level and metric[a] > metric[b]))

    names = list(speed.index)
    front = [b for b in names if not any(beats(a, b) for a in names if a != b)]
    return sorted(front, key=lambda n: (-speed.at[n, "speedup"], -metric[n], n))


def pareto(variants: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """The metric against size and against the interleaved speed-up, with each Pareto front.

    Args:
        variants: flat metrics, a row per variant (:func:`pipeline.report.collect.collect`).

    Returns:
        ``(table, fronts)``: table indexed by variant with ``<metric>``, ``size_mb``, ``speedup``,
        ``speedup_p10``, ``speedup_p90``, ``latency_ms_p50`` (absolute, for reference only), ``size_front`` and
        ``speedup_front`` (1 on the front, else 0); variants without a measured metric or size are left out, and
        those without a speed-up are on no speed-up front (NA speed-up). ``fronts``: ``{"size": [...] by
        increasing size, "speedup": [...] fastest first}``.
    """
    metric = primary_metric(variants)
    table = pd.DataFrame({metric: variants[metric], "size_mb": variants["size_bytes"] / 1e6})
    table = table[[all(measured(v) for v in row) for row in table.values]].astype(float)
    table = table.join(speedup_table(variants), how="left")
    table["latency_ms_p50"] = variants["latency_ms_p50"] if "latency_ms_p50" in variants else float("nan")
    timed = table.dropna(subset=["speedup"])
    fronts = {"size": pareto_front({n: (c, q) for n, c, q in zip(table.index, table["size_mb"], table[metric])}),
              "speedup": speedup_front(timed[["speedup", *SPREAD]], timed[metric])}
    for key in fronts:
        table[f"{key}_front"] = [int(n in fronts[key]) for n in table.index]
    return table, fronts
