"""Published reference numbers a model card may show (``report.cited``): cited, never measured.

They sit in a table of their own under the measured tables, headed as cited, each with its source, and
never enter a measured column, a delta, a Pareto front or a figure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from pipeline.core.errors import PipelineError


@dataclass
class CitedResult:
    """One published number (``report.cited[i]``)."""

    task: str
    """The task whose model card shows it (a name under ``tasks``, e.g. ``qa``)."""
    model: str
    """The model the publication measured, e.g. ``BERT-base (uncased)``."""
    metric: str
    """The metric and the split it was measured on, as published, e.g. ``F1 (SQuAD v1.1 dev)``."""
    value: float
    """The published value, in the publication's unit (SQuAD and GLUE tables print percentages)."""
    source: str
    """Where it is published: paper and table, or the official page."""

    def __post_init__(self):
        for name in ("task", "model", "metric", "source"):
            if not getattr(self, name).strip():
                raise ValueError(f"{name} must not be empty")


@dataclass
class ReportParams:
    """The ``report`` stage's settings."""

    cited: list[CitedResult] = field(default_factory=list)
    """Published reference numbers shown under each card's measured tables, labelled cited, not measured."""
    budget: float = 1.0
    """The deployment choice's metric budget: points of the primary metric (0.01 accuracy for classification,
    1 F1 for QA) a variant may lose against the dense model (:mod:`pipeline.report.deploy`)."""

    def __post_init__(self):
        if not 0 <= self.budget < 100:
            raise ValueError(f"budget must be in [0, 100) points, got {self.budget}")


def check_cited(cited: list[CitedResult], tasks: Iterable[str]) -> None:
    """Refuse a cited number for a task the report has no card for (it would silently never appear).

    Raises:
        PipelineError: ``params.yaml: 'report.cited[<i>].task' ...`` naming the entry and the known tasks.
    """
    known = sorted(tasks)
    for i, row in enumerate(cited):
        if row.task not in known:
            raise PipelineError(f"params.yaml: 'report.cited[{i}].task' is {row.task!r}, not an evaluated task "
                                f"({', '.join(known)})")


def cited_table(cited: list[CitedResult], task: str) -> pd.DataFrame | None:
    """Text cells of ``task``'s cited numbers (index ``model``; ``metric``, ``value``, ``source``), in the
    order given, or None when there are none."""
    rows = [r for r in cited if r.task == task]
    if not rows:
        return None
    return pd.DataFrame({"metric": [r.metric for r in rows], "value (cited)": [f"{r.value:g}" for r in rows],
                         "source": [r.source for r in rows]}, index=pd.Index([r.model for r in rows], name="model"))
