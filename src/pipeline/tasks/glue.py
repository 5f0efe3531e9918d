"""The GLUE tasks: text columns, label count, official metrics and validation splits of each.

A classification task with ``tasks.<name>.glue: <task>`` reads that task's columns and is scored with its
official metrics (Wang et al., 2019; the names follow the hub's ``glue`` metric): accuracy; F1 of the
positive class for MRPC/QQP; Matthews correlation for CoLA; Pearson/Spearman for STS-B, the only
regression task (one output, float labels). MNLI is scored on the matched validation set under the plain
metric names and on the mismatched one under names with a ``_mismatched`` suffix.

Scores go through the ``glue`` ``evaluate`` module of :mod:`pipeline.metrics.modules` with the task's
config, the call a user with hub access can repeat with the official ``evaluate.load("glue", config)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.core.errors import PipelineError
from pipeline.data.io import check_columns
from pipeline.metrics import glue as glue_metrics

# Metric registry: name -> (predictions, labels) -> float, or None where undefined. Class ids for
# classification, floats for regression.
METRICS = glue_metrics.GLUE_METRICS


@dataclass(frozen=True)
class GlueTask:
    """How one task's rows are read and scored."""

    text_columns: tuple[str, ...]
    """One column (single sentence) or two (a pair, encoded as ``[CLS] a [SEP] b [SEP]``)."""
    config: str
    """The config of the ``glue`` metric module that scores the task (a key of
    :data:`pipeline.metrics.glue.GLUE_CONFIGS`, the GLUE task's name)."""
    primary: str
    """The metric reports sort by."""
    eval_splits: dict[str, str] = field(default_factory=lambda: {"validation": ""})
    """Prepared split -> suffix of its metric names; splits other than ``validation`` are optional."""
    num_labels: int = 2
    """1 means regression."""

    @property
    def metrics(self) -> tuple[str, ...]:
        """Names in :data:`METRICS` that :attr:`config` reports, on every validation split."""
        return glue_metrics.GLUE_CONFIGS[self.config]

    @property
    def regression(self) -> bool:
        return self.num_labels == 1

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column a row must have."""
        return (*self.text_columns, "label")


_PAIR = ("sentence1", "sentence2")
TASKS: dict[str, GlueTask] = {
    "cola": GlueTask(("sentence",), "cola", "matthews_correlation"),
    "sst2": GlueTask(("sentence",), "sst2", "accuracy"),
    "mrpc": GlueTask(_PAIR, "mrpc", "f1"),
    "qqp": GlueTask(("question1", "question2"), "qqp", "f1"),
    "stsb": GlueTask(_PAIR, "stsb", "pearson", num_labels=1),
    "mnli": GlueTask(("premise", "hypothesis"), "mnli", "accuracy",
                     {"validation": "", "validation_mismatched": "_mismatched"}, num_labels=3),
    "qnli": GlueTask(("question", "sentence"), "qnli", "accuracy"),
    "rte": GlueTask(_PAIR, "rte", "accuracy"),
    "wnli": GlueTask(_PAIR, "wnli", "accuracy"),
}
# The pipeline's own classification schema (``tasks.<name>.glue`` empty): SST-2 columns, scored like MRPC
# (accuracy and F1 of class 1).
DEFAULT = GlueTask(("sentence",), "mrpc", "accuracy")


def spec(name: str, num_labels: int) -> GlueTask:
    """The GLUE task ``name``, or :data:`DEFAULT` with ``num_labels`` when ``name`` is empty; a one-output
    default task is a regression scored like STS-B."""
    if not name:
        if num_labels == 1:
            return GlueTask(DEFAULT.text_columns, TASKS["stsb"].config, TASKS["stsb"].primary, num_labels=1)
        return GlueTask(DEFAULT.text_columns, DEFAULT.config, DEFAULT.primary, num_labels=num_labels)
    if name not in TASKS:  # the params validate the name too; this guards direct callers
        raise PipelineError(f"unknown GLUE task '{name}' (known: {', '.join(TASKS)})")
    return TASKS[name]


def check(glue: GlueTask, rows: list[dict], where: str) -> None:
    """Raise a :class:`PipelineError` naming ``where`` if rows lack a column or have an impossible label.

    Classification labels must be integers in ``[0, num_labels)`` (GLUE's unlabelled test rows carry -1);
    regression labels must be numbers.
    """
    check_columns(rows, glue.columns, where, f"a task with columns {list(glue.columns)}")
    for n, row in enumerate(rows, 1):
        label = row["label"]
        if glue.regression:
            ok = isinstance(label, (int, float)) and not isinstance(label, bool) and np.isfinite(label)
        else:
            ok = isinstance(label, int) and not isinstance(label, bool) and 0 <= label < glue.num_labels
        if not ok:
            kind = "a finite number" if glue.regression else f"an integer in [0, {glue.num_labels})"
            raise PipelineError(f"{where}: row {n}: label {label!r} is not {kind}")


def predictions(glue: GlueTask, logits: np.ndarray) -> np.ndarray:
    """Scores ``(N,)`` from ``(N, 1)`` regression outputs, else arg-max class ids ``(N,)`` of ``(N, C)`` logits."""
    return logits[:, 0] if glue.regression else logits.argmax(-1)


def score(glue: GlueTask, logits: np.ndarray, labels, suffix: str = "") -> dict[str, float | None]:
    """The task's metrics of ``logits`` ``(N, C)`` against gold ``labels`` ``(N,)``, names ending in ``suffix``.

    Computed by :func:`pipeline.metrics.glue.glue_scores` with the task's config, the functions the local
    ``glue`` metric module (:mod:`pipeline.metrics.modules`) wraps, so the module gives the same values;
    an undefined metric (a correlation with a constant side) is None.
    """
    scores = glue_metrics.glue_scores(glue.config, predictions(glue, logits), np.asarray(labels))
    return {f"{name}{suffix}": scores[name] for name in glue.metrics}
