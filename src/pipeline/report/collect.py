"""Reading what earlier stages wrote: evaluation metrics and details, and the dvclive training logs."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pandas as pd


def frame(rows: list[dict], index: str | None = None) -> pd.DataFrame:
    """A DataFrame of ``rows`` (dicts that may lack keys; a missing value is NA).

    A column whose present values are all integers stays integer (nullable ``Int64``) even when some rows
    lack it, so counts print as ``750,000``, not ``750000.0``.

    Args:
        rows: one dict per row.
        index: the column to index by (e.g. ``"variant"``), or None for a plain range index.

    Returns:
        the frame, sorted by ``index`` when one is given.
    """
    out = pd.DataFrame.from_records(rows)
    for column in out.columns:
        present = [r[column] for r in rows if r.get(column) is not None]
        if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            out[column] = out[column].astype("Int64")
    return out.set_index(index).sort_index() if index and not out.empty else out


def collect(metrics_dir: str | Path) -> dict[str, pd.DataFrame]:
    """The evaluate stage's flat metrics, one DataFrame per task.

    Args:
        metrics_dir: directory of ``<task>/<variant>.json`` (files without a ``task`` key, e.g. pretrain
            or merge metrics, are skipped).

    Returns:
        ``{task: frame}``: a row per variant (index ``variant``, the file's stem, sorted), a column per metric.
        A NaN or infinite number (e.g. the AUC of a split with one class) is no measurement: it is NA.
    """
    rows: dict[str, list[dict]] = {}
    for path in sorted(Path(metrics_dir).glob("*/*.json")):
        data = json.loads(path.read_text())
        if "task" in data:
            kept = {k: v for k, v in data.items() if not (isinstance(v, float) and not math.isfinite(v))}
            rows.setdefault(path.parent.name, []).append({**kept, "variant": path.stem})
    return {task: frame(task_rows, index="variant") for task, task_rows in rows.items()}


def collect_details(details_dir: str | Path) -> dict[str, dict[str, dict]]:
    """``{task: {variant: details}}`` from ``<details_dir>/<task>/<variant>.json`` (empty if absent)."""
    out: dict[str, dict[str, dict]] = {}
    for path in sorted(Path(details_dir).glob("*/*.json")):
        out.setdefault(path.parent.name, {})[path.stem] = json.loads(path.read_text())
    return out


def read_tsv(path: Path) -> list[dict[str, float]]:
    """Rows of a dvclive TSV as floats."""
    return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(path.read_text()),
                                                                             delimiter="\t")]


def _task_logs(train_dir: str | Path, task: str, pattern: str) -> list[tuple[str, Path]]:
    """``("<stage>/<key>", file)`` for dvclive files ``<stage>/<key>/plots/metrics/<pattern>`` of ``task``'s runs.

    A run belongs to ``task`` when its key is the task or starts with ``<task>-`` (e.g. ``distill/cls-heads``).
    """
    out = []
    for path in sorted(Path(train_dir).glob(f"*/*/plots/metrics/{pattern}")):
        key_dir = path.parents[3]
        if key_dir.name == task or key_dir.name.startswith(f"{task}-"):
            out.append((f"{key_dir.parent.name}/{key_dir.name}", path))
    return out


def loss_curves(train_dir: str | Path, task: str) -> dict[str, list[dict[str, float]]]:
    """Training-loss curves of ``task``: ``{"<stage>/<key>": [{"step", "loss"}, ...]}``.

    Logs whose key is the task or starts with ``<task>-`` (e.g. ``distill/cls-heads``) belong to it. Absent
    logs give an empty dict: no curve is drawn then, none invented.
    """
    out = {}
    for run, path in _task_logs(train_dir, task, "train/loss.tsv"):
        rows = read_tsv(path)
        if rows:
            out[run] = rows
    return out


def eval_curves(train_dir: str | Path, task: str) -> dict[str, list[dict[str, float]]]:
    """Validation metrics logged during training (``plots/metrics/eval/<metric>.tsv``) of ``task``'s runs.

    Returns:
        ``{"<stage>/<key> <metric>": [{"step", "loss"}, ...]}`` (the value under ``loss`` so the same plotting
        code draws them; the metric is in the name); empty when no logs exist.
    """
    out = {}
    for run, path in _task_logs(train_dir, task, "eval/*.tsv"):
        rows = read_tsv(path)
        column = next((c for c in (rows[0] if rows else {}) if c != "step"), None)
        if column:
            out[f"{run} {path.stem}"] = [{"step": r["step"], "loss": r[column]} for r in rows]
    return out
