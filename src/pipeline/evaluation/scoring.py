"""A variant's task metrics, its predictions and, for classification, its per-class diagnostics, from one
forward pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from pipeline.metrics.diagnostics import classification_report
from pipeline.tasks.base import Task


@dataclass
class TaskResults:
    """What :func:`task_metrics` measured."""

    scores: dict
    """The task's metrics on every prepared validation split (:meth:`pipeline.tasks.base.Task.evaluate`)."""
    diagnostics: dict
    """:func:`pipeline.metrics.diagnostics.classification_report` of the ``validation`` split; empty when the
    task has no classes (QA, regression)."""
    predictions: dict[str, object] = field(default_factory=dict)
    """The ``validation`` split's predictions as ``{file name: JSON content}`` (the task's
    :meth:`~pipeline.tasks.base.Task.score` with ``predictions``: SQuAD's files for QA, per-example records for
    classification)."""
    device: str = "cpu"
    """Where the forward pass ran."""


def task_metrics(task: Task, model, data_dir: str | Path, tokenizer, batch_size: int,
                 device: torch.device) -> TaskResults:
    """Score ``model`` on the task's validation split(s), keep its predictions and diagnose its classes from the
    same logits.

    The forward pass runs in fp32 on ``device``: where the variant runs in this run
    (:func:`pipeline.evaluation.speed.run_device`: the run's GPU unless its format is CPU-only, e.g. dynamic int8
    kernels); the model is moved there and stays.
    """
    scored = task.evaluate(model.to(device), data_dir, tokenizer, batch_size, device, predictions=True)
    labels = task.class_labels(task.rows(data_dir, "validation"))
    diagnostics = {} if labels is None or scored.logits is None else classification_report(scored.logits, labels)
    return TaskResults(scored.scores, diagnostics, scored.predictions or {}, device.type)
