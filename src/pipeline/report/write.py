"""Writing the whole report directory: one task directory per task, the summary and the GLUE table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core.files import atomic_dir, write_json
from pipeline.data.params import PrepareParams
from pipeline.report import glue_table
from pipeline.report.card import CardInputs
from pipeline.report.cited import CitedResult
from pipeline.report.collect import Collected, eval_curves, left_out_line, left_out_markdown, loss_curves
from pipeline.report.deploy import DeployInputs, choice_markdown, choices
from pipeline.report.describe import read_configs
from pipeline.report.epochs import epoch_frame
from pipeline.report.sweeps import sweep_report
from pipeline.report.tables import markdown, records, summarize
from pipeline.report.task_report import task_report


LEFT_OUT_FILE = "left_out.md"
"""Every evaluation the report left out, with its reason (the summary's one line links it)."""


@dataclass
class ReportInputs:
    """What the report shows besides the evaluations (:class:`pipeline.report.collect.Collected`)."""

    train: Path
    """The training stages' dvclive logs (``metrics/train``)."""
    prepare: PrepareParams | None = None
    """The ``prepare`` params: data source and tokenizer of each task."""
    counts: dict = field(default_factory=dict)
    """Rows per data set and split (:func:`pipeline.report.describe.read_counts`)."""
    cited: list[CitedResult] = field(default_factory=list)
    """``report.cited``: published numbers, shown labelled as cited."""
    models: Path | None = None
    """The artifacts, ``<models>/<task>/<variant>/``: each card describes a model from its own ``config.json``."""
    deploy: DeployInputs | None = None
    """The deployment choice's budget, metric points and artifacts (None: no choice is written)."""


def write_report(out: str | Path, found: Collected, inputs: ReportInputs) -> None:
    """Write ``out`` atomically: ``<task>/`` (card, figures, plot data, the sweeps by remaining weights) for every
    task with reported variants,
    ``summary.md``/``summary.json`` (every task side by side; one line on what was left out), ``glue.md``/``glue.json``
    (the GLUE table), and what was left out and why (:data:`LEFT_OUT_FILE`, and each card its task's); with
    ``inputs.deploy``, the deployment choice (``deploy.json``, and a section of the summary and of each card)."""
    tables, glue = summarize(found.results), glue_table.build(found.results)
    picked = choices(found.results, inputs.deploy) if inputs.deploy else None

    def choice(task: str | None = None) -> str:
        return choice_markdown(picked, inputs.deploy.budget, task) if picked is not None else ""

    with atomic_dir(out) as tmp:
        for task, variants in found.results.items():
            kept = set(variants.index)
            epochs = epoch_frame(inputs.train, task)
            epochs = epochs[epochs["variant"].isin(kept)]  # as the curves: only runs of reported variants
            card = CardInputs(epochs, inputs.prepare, inputs.counts.get(task), inputs.cited,
                              read_configs(inputs.models, task, list(variants.index)))
            task_report(tmp, task, variants, found.details[task], loss_curves(inputs.train, task, kept),
                        eval_curves(inputs.train, task, kept), card)
            sweep_report(tmp / task, task, variants)
            with open(tmp / task / "MODEL_CARD.md", "a") as fh:
                fh.write(choice(task) + left_out_markdown(found.left_out, task))
        write_json(tmp / "summary.json", {task: records(table) for task, table in tables.items()})
        glue_table.write(tmp, glue)
        if picked is not None:
            write_json(tmp / "deploy.json", {"budget_points": inputs.deploy.budget, "choices": picked})
        link = f"GLUE table ({len(glue['tasks'])} GLUE task(s) of this run): [glue.md](glue.md)"
        head = f"{link}\n\n{left_out_line(found.left_out, LEFT_OUT_FILE)}"
        (tmp / "summary.md").write_text(markdown(tables).replace("\n\n", f"\n\n{head}\n\n", 1) + choice())
        (tmp / LEFT_OUT_FILE).write_text(left_out_markdown(found.left_out, heading="# Left out").lstrip())
