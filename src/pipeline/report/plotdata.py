"""The data behind the report's plots, in long format: one file per task and view with a ``variant`` column.

Each ``reports/<task>/data/<view>.csv`` holds every variant of the task, so one plot definition in
``dvc.yaml`` with a template that colours or facets by ``variant`` (``.dvc/plots/``) draws them all, and a
variant added to the pipeline needs no plot edit. Everything here reshapes what the evaluate stage recorded.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.report.collect import frame


def layers_frame(details: dict[str, dict]) -> pd.DataFrame:
    """Per-layer facts of every variant: ``variant``, ``layer``, then the recorded facts (``params``,
    ``nonzero``, ``sparsity``, ``heads``, ``ffn_neurons``); empty when no details hold layers.

    Args:
        details: ``{variant: details JSON}`` of one task.
    """
    return frame([{"variant": name, **row} for name, d in sorted(details.items()) for row in d.get("layers") or []])


def binary_rocs(details: dict[str, dict]) -> dict[str, dict]:
    """``{variant: {"fpr", "tpr", "auc"}}``: the positive-class ROC curve of variants of a binary task.

    Multi-class one-vs-rest curves are left out (one line per variant is what the plots compare); they stay in
    the details JSON.
    """
    out = {}
    for name, d in sorted(details.items()):
        diag = d.get("classification") or {}
        if diag and len(diag["roc"]) == 1:
            (curve,) = diag["roc"].values()
            out[name] = {"fpr": curve["fpr"], "tpr": curve["tpr"], "auc": diag["auc"]}
    return out


def roc_frame(rocs: dict[str, dict]) -> pd.DataFrame:
    """ROC points of :func:`binary_rocs` in long format: ``variant``, ``fpr``, ``tpr``."""
    return pd.DataFrame([{"variant": name, "fpr": f, "tpr": t} for name, c in rocs.items()
                         for f, t in zip(c["fpr"], c["tpr"])], columns=["variant", "fpr", "tpr"])


def confusion_matrices(details: dict[str, dict]) -> dict[str, list[list[int]]]:
    """``{variant: (C, C) counts}`` (rows actual, columns predicted) of the variants with classes."""
    return {name: d["classification"]["confusion"] for name, d in sorted(details.items())
            if d.get("classification")}


def confusion_frame(matrices: dict[str, list[list[int]]]) -> pd.DataFrame:
    """Confusion counts in long format: ``variant``, ``actual``, ``predicted``, ``count``, one row per cell
    (zero cells included, so every matrix is complete)."""
    return pd.DataFrame([{"variant": name, "actual": a, "predicted": p, "count": n}
                         for name, matrix in matrices.items() for a, row in enumerate(matrix)
                         for p, n in enumerate(row)], columns=["variant", "actual", "predicted", "count"])


def curves_frame(curves: dict[str, list[dict[str, float]]], value: str) -> pd.DataFrame:
    """Logged curves in long format: ``run``, ``step``, ``value`` (the name given), runs sorted.

    Args:
        curves: ``{"<stage>/<key>[ <metric>]": [{"step", "loss"}, ...]}`` (:mod:`pipeline.report.collect`).
        value: the name of the value column (``loss``, ``value``).
    """
    return pd.DataFrame([{"run": name, "step": r["step"], value: r["loss"]} for name, rows in sorted(curves.items())
                         for r in rows], columns=["run", "step", value])


def write_csv(table: pd.DataFrame, path: Path) -> None:
    """``table`` as CSV (no index column, ``\\n`` line ends), creating the parent directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False, lineterminator="\n")
