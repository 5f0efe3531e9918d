"""Reading what earlier stages wrote: evaluation metrics and details, and the dvclive training logs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path


def collect(metrics_dir: str | Path) -> dict[str, dict[str, dict]]:
    """``{task: {variant: metrics}}`` from ``<metrics_dir>/<task>/<variant>.json`` (pretrain/merge excluded)."""
    out: dict[str, dict[str, dict]] = {}
    for path in sorted(Path(metrics_dir).glob("*/*.json")):
        data = json.loads(path.read_text())
        if "task" in data:
            out.setdefault(path.parent.name, {})[path.stem] = data
    return out


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
