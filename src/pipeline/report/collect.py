"""Reading what earlier stages wrote: evaluation metrics and details, and the dvclive training logs.

Only evaluations of the current pipeline are reported. ``metrics/`` keeps every file an evaluate stage ever
wrote there (``dvc repro`` of a few targets refreshes those and leaves the rest), so :func:`collect` keeps a
variant only when it is one of the current ``tasks``/``variants`` (dvc.yaml's lists) and the lineage in its
files (:mod:`pipeline.evaluation.lineage`) matches the current inputs: the same prepared data and tokenizer,
the same baseline, and the artifact as it is now. Everything else is left out with the reason
(:class:`LeftOut`), which the report prints in the summary and the model cards.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.core.errors import PipelineError
from pipeline.core.files import dir_hash
from pipeline.evaluation.lineage import hashes, mismatch, tokenizer_hash
from pipeline.report.tables import BASELINE, baseline_first

# The flat files of one evaluation (under the metrics root), merged into one row per variant; ``eval`` holds
# the identity and task metrics, the others facts and speed (pipeline.evaluation.outputs).
KINDS = ("eval", "facts", "speed")


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


@dataclass
class Pipeline:
    """What the current pipeline is, for the lineage check."""

    tasks: list[str]
    """Task names (dvc.yaml's ``task_names``)."""
    variants: list[str]
    """Variant names (dvc.yaml's ``variants``)."""
    data: Path
    """The prepared data: ``<data>/<task>`` per task and ``<data>/tokenizer``."""
    models: Path
    """The artifacts: ``<models>/<task>/<variant>``; ``<models>/<task>/finetune`` (:data:`BASELINE`) is the
    baseline every variant is timed against."""
    _hashes: dict[Path, str] = field(default_factory=dict, repr=False)

    def current(self, task: str, variant: str) -> dict[str, str]:
        """``{role: sha256}`` of the current inputs of one variant: ``data``, ``tokenizer``, ``baseline`` and
        ``artifact`` (each directory hashed once).

        Raises:
            PipelineError: a missing input, named.
        """
        paths = {"data": self.data / task, "tokenizer": self.data / "tokenizer",
                 "baseline": self.models / task / BASELINE, "artifact": self.models / task / variant}
        for role, path in paths.items():
            if not path.is_dir():
                raise PipelineError(f"{path}: not found (the current {role})")
            if path not in self._hashes:
                self._hashes[path] = tokenizer_hash(path) if role == "tokenizer" else dir_hash(path)
        return {role: self._hashes[path] for role, path in paths.items()}


EXPORT_FORMATS = ("onnx", "onnx_int8")
"""The artifacts the export stage writes per source, ``<format>-<source>`` (dvc.yaml's ``export`` outs and the
``format`` axis of ``evaluate-export``; the runtime formats :mod:`pipeline.export` registers)."""


def quantized_variant(scheme: str, source: str) -> str:
    """The name of ``source`` quantized with ``scheme``: ``quantize-<scheme>-<source>`` (dvc.yaml's ``quantize``
    matrix; e.g. ``quantize-dynamic_int8-distill-heads``). Scheme names are identifiers (no ``-``), so the name
    splits back at its second ``-``."""
    return f"quantize-{scheme}-{source}"


def current_variants(variants: list[str], quantize: tuple[list[str], list[str]], export_sources: list[str],
                     sweep: list[dict]) -> list[str]:
    """Every variant the current pipeline evaluates: ``dvc.yaml``'s ``variants``, one
    ``quantize-<scheme>-<source>`` (:func:`quantized_variant`) per pair of ``quantize = (quantize.schemes,
    quantize.sources)``, ``onnx-<source>`` and ``onnx_int8-<source>`` (:data:`EXPORT_FORMATS`) per
    ``export.sources`` entry and, per ``prune.sweep`` point ``{method, value}``, ``prune-<method>-<value>`` and
    ``distill-<method>-<value>`` (the names ``dvc.yaml``'s matrices give them; the value as YAML wrote it)."""
    points = [f"{p['method']}-{p['value']}" for p in sweep]
    schemes, sources = quantize
    return [*variants, *(quantized_variant(q, s) for q in schemes for s in sources),
            *(f"{fmt}-{s}" for fmt in EXPORT_FORMATS for s in export_sources),
            *(f"{kind}-{point}" for point in points for kind in ("prune", "distill"))]


@dataclass
class LeftOut:
    """An evaluation (or a current variant without one) that the report does not show, and why."""

    task: str
    variant: str
    reason: str
    kind: str = "inputs"
    """Why, in one word (:data:`LEFT_OUT_KINDS`): ``task``/``variant`` (not in ``dvc.yaml``), ``missing`` (a current
    variant without evaluation files) or ``inputs`` (files from another evaluation or other inputs)."""


# (kind, what it says, how to clear it) of each reason an evaluation is left out, in the order the summary names them.
LEFT_OUT_KINDS = (
    ("task", "evaluation(s) of tasks not in dvc.yaml", "delete `metrics/{eval,facts,speed,details,predictions}/<task>/`"),
    ("variant", "evaluation(s) of variants not in dvc.yaml", "delete their `<task>/<variant>.json` under `metrics/`"),
    ("missing", "current variant(s) not evaluated", "`dvc repro`"),
    ("inputs", "evaluation(s) made from other data, tokenizer, baseline or artifacts", "`dvc repro`"),
)


@dataclass
class Collected:
    """:func:`collect`'s result."""

    results: dict[str, pd.DataFrame]
    """``{task: frame}``: a row per reported variant (index ``variant``), a column per metric."""
    details: dict[str, dict[str, dict]] = field(default_factory=dict)
    """``{task: {variant: details JSON}}`` of the reported variants."""
    left_out: list[LeftOut] = field(default_factory=list)
    """What was left out, sorted by task and variant."""


def _read(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _evaluation(files: dict[str, Path], task: str, variant: str) -> tuple[dict | None, str | None]:
    """``{kind: content}`` of a variant's eval, facts, speed and details files, or ``(None, reason)`` when one is
    missing, unreadable, names another variant or carries another lineage than the others."""
    parts = {kind: _read(path) for kind, path in files.items()}
    for kind, data in parts.items():
        if data is None:
            return None, f"{files[kind]} missing or not a JSON object"
        if (data.get("task"), data.get("variant")) != (task, variant):
            return None, f"{files[kind]} describes {data.get('task')}/{data.get('variant')}"
    if len({json.dumps(hashes(d.get("lineage")), sort_keys=True) for d in parts.values()}) != 1:
        return None, f"its {', '.join(files)} files come from different evaluations"
    return parts, None


def _check(files: dict[str, Path], pipeline: Pipeline, task: str, variant: str) -> tuple[dict | None, str | None]:
    """A current variant's files (:func:`_evaluation`) when their lineage matches the pipeline, or
    ``(None, reason)``."""
    parts, reason = _evaluation(files, task, variant)
    if parts is None:
        return None, reason
    try:
        current = pipeline.current(task, variant)
    except PipelineError as err:
        return None, str(err)
    reason = mismatch(parts["eval"].get("lineage"), current)
    return (None, reason) if reason else (parts, None)


def collect(metrics_dir: str | Path, details_dir: str | Path, pipeline: Pipeline) -> Collected:
    """The evaluations of the current pipeline, one DataFrame per task, their details, and what was left out.

    Args:
        metrics_dir: the metrics root, with ``eval/``, ``facts/`` and ``speed/`` each holding
            ``<task>/<variant>.json`` (:mod:`pipeline.evaluation.outputs`).
        details_dir: the details, ``<task>/<variant>.json``.
        pipeline: the current tasks, variants and inputs.

    Returns:
        :class:`Collected`: per task a row per kept variant (the union of its three flat files without the
        lineage; a NaN or infinite number is no measurement: NA), the baseline first and the others sorted by
        variant, and its details; tasks
        without any kept variant are absent. Left out, with the reason: files of tasks or variants not in the
        pipeline, current variants without (complete, consistent) files, and files whose lineage differs from
        the current inputs.

    Raises:
        PipelineError: when no variant of any task is left (the reasons summarised).
    """
    metrics, out = Path(metrics_dir), Collected({})
    found = {(p.parent.name, p.stem) for kind in KINDS for p in (metrics / kind).glob("*/*.json")}
    for task, variant in sorted(found | {(t, v) for t in pipeline.tasks for v in pipeline.variants}):
        if task not in pipeline.tasks or variant not in pipeline.variants:
            what = "task" if task not in pipeline.tasks else "variant"
            out.left_out.append(LeftOut(task, variant, f"not a {what} of the current pipeline (dvc.yaml)", what))
            continue
        files = {**{k: metrics / k / task / f"{variant}.json" for k in KINDS},
                 "details": Path(details_dir) / task / f"{variant}.json"}
        parts, reason = _check(files, pipeline, task, variant) if (task, variant) in found else (
            None, "not evaluated (no metrics files)")
        if parts is None:
            out.left_out.append(LeftOut(task, variant, reason, "inputs" if (task, variant) in found else "missing"))
            continue
        out.details.setdefault(task, {})[variant] = parts["details"]
        row = {k: v for kind in KINDS for k, v in parts[kind].items() if k != "lineage"}
        kept = {k: v for k, v in row.items() if not (isinstance(v, float) and not math.isfinite(v))}
        out.results.setdefault(task, []).append({**kept, "variant": variant})
    if not out.results:
        shown = "; ".join(f"{x.task}/{x.variant}: {x.reason}" for x in out.left_out[:3])
        raise PipelineError(f"{metrics}: no evaluation metrics of the current pipeline ({shown}"
                            f"{f'; +{len(out.left_out) - 3} more' if len(out.left_out) > 3 else ''})")
    out.results = {task: baseline_first(frame(rows, index="variant")) for task, rows in out.results.items()}
    return out


def left_out_line(left_out: list[LeftOut], link: str) -> str:
    """One line of the summary: how many evaluations were left out per reason (:data:`LEFT_OUT_KINDS`, with the
    tasks concerned) and how to clear each, pointing to ``link`` for the list; says so when nothing was."""
    if not left_out:
        return "Left out: nothing (every current variant's evaluation matches the current pipeline)."
    parts = []
    for kind, what, clear in LEFT_OUT_KINDS:
        rows = [x for x in left_out if x.kind == kind]
        if rows:
            tasks = ", ".join(sorted({x.task for x in rows}))
            parts.append(f"{len(rows)} {what} ({tasks}; to clear: {clear})")
    return f"Left out: {'; '.join(parts)}. Each one with its reason: [{link}]({link})."


def left_out_markdown(left_out: list[LeftOut], task: str | None = None, heading: str = "## Left out") -> str:
    """A markdown section (``heading``) listing what was left out (of ``task``, or of every task), or saying
    nothing was."""
    rows = [x for x in left_out if task is None or x.task == task]
    lines = ["", heading, ""]
    if not rows:
        return "\n".join([*lines, "Nothing: every current variant's evaluation matches the current pipeline.", ""])
    lines += ["Evaluations found in `metrics/` (or variants of the pipeline) whose numbers are not shown, because "
              "they do not belong to the current pipeline's tasks, variants, data, tokenizer, baseline or "
              "artifacts:", "", "| task | variant | why |", "|---|---|---|"]
    return "\n".join([*lines, *(f"| {x.task} | {x.variant} | {x.reason} |" for x in rows), ""])


def read_tsv(path: Path) -> list[dict[str, float]]:
    """Rows of a dvclive TSV as floats."""
    return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(path.read_text()),
                                                                             delimiter="\t")]


def run_variant(stage: str, key: str, task: str) -> str:
    """The variant a training run of ``task`` produced: ``finetune/cls`` -> ``finetune``, ``distill/cls-heads`` ->
    ``distill-heads`` (the stage, plus the method after ``<task>-``)."""
    return stage if key == task else f"{stage}-{key[len(task) + 1:]}"


def _task_logs(train_dir: str | Path, task: str, pattern: str,
               variants: set[str] | None = None) -> list[tuple[str, Path]]:
    """``("<stage>/<key>", file)`` for dvclive files ``<stage>/<key>/plots/metrics/<pattern>`` of ``task``'s runs.

    A run belongs to ``task`` when its key is the task or starts with ``<task>-`` (e.g. ``distill/cls-heads``);
    with ``variants``, only runs that produced one of them (:func:`run_variant`) are kept.
    """
    out = []
    for path in sorted(Path(train_dir).glob(f"*/*/plots/metrics/{pattern}")):
        key_dir = path.parents[3]
        if key_dir.name == task or key_dir.name.startswith(f"{task}-"):
            if variants is None or run_variant(key_dir.parent.name, key_dir.name, task) in variants:
                out.append((f"{key_dir.parent.name}/{key_dir.name}", path))
    return out


def loss_curves(train_dir: str | Path, task: str,
                variants: set[str] | None = None) -> dict[str, list[dict[str, float]]]:
    """Training-loss curves of ``task``: ``{"<stage>/<key>": [{"step", "loss"}, ...]}``.

    Logs whose key is the task or starts with ``<task>-`` (e.g. ``distill/cls-heads``) belong to it; with
    ``variants`` (the reported ones), only the runs that produced one of them. Absent logs give an empty dict:
    no curve is drawn then, none invented.
    """
    out = {}
    for run, path in _task_logs(train_dir, task, "train/loss.tsv", variants):
        rows = read_tsv(path)
        if rows:
            out[run] = rows
    return out


def eval_curves(train_dir: str | Path, task: str,
                variants: set[str] | None = None) -> dict[str, list[dict[str, float]]]:
    """Validation metrics logged during training (``plots/metrics/eval/<metric>.tsv``) of ``task``'s runs (with
    ``variants``, of the runs that produced one of them).

    Returns:
        ``{"<stage>/<key> <metric>": [{"step", "loss"}, ...]}`` (the value under ``loss`` so the same plotting
        code draws them; the metric is in the name); empty when no logs exist.
    """
    out = {}
    for run, path in _task_logs(train_dir, task, "eval/*.tsv", variants):
        rows = read_tsv(path)
        column = next((c for c in (rows[0] if rows else {}) if c != "step"), None)
        if column:
            out[f"{run} {path.stem}"] = [{"step": r["step"], "loss": r[column]} for r in rows]
    return out
