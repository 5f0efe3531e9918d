"""A variant's task metrics and, for classification, its per-class diagnostics, from one forward pass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.evaluate.diagnostics import classification_report
from pipeline.evaluate.speed import runs_on_cuda
from pipeline.tasks.base import Task


@dataclass
class TaskResults:
    """What :func:`task_metrics` measured."""

    scores: dict
    """The task's metrics on every prepared validation split (:meth:`pipeline.tasks.base.Task.evaluate`)."""
    diagnostics: dict
    """:func:`pipeline.evaluate.diagnostics.classification_report` of the ``validation`` split; empty when the
    task has no classes (QA, regression)."""
    labels: np.ndarray | None = None
    """Gold class ids ``(N,)`` of the ``validation`` split, when there are diagnostics."""
    predictions: np.ndarray | None = None
    """Predicted class ids ``(N,)``, when there are diagnostics."""
    device: str = "cpu"
    """Where the forward pass ran."""


def task_metrics(task: Task, model, data_dir: str | Path, tokenizer, batch_size: int,
                 devices: tuple[str, ...]) -> TaskResults:
    """Score ``model`` on the task's validation split(s) and diagnose its classes from the same logits.

    The forward pass runs in fp32 on the GPU when there is one and the model's format runs there (``devices``,
    e.g. dynamic int8 kernels are CPU-only), else on the CPU.
    """
    device = "cuda" if runs_on_cuda(devices) else "cpu"
    scores, logits = task.evaluate(model.to(device), data_dir, tokenizer, batch_size, device)
    labels = task.class_labels(task.rows(data_dir, "validation"))
    if labels is None or logits is None:
        return TaskResults(scores, {}, device=device)
    return TaskResults(scores, classification_report(logits, labels), labels, logits.argmax(-1), device)
