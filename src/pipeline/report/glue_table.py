"""The GLUE table: one row per GLUE task of the run, one column per variant, and the GLUE average.

Every number comes from this run's evaluate stage (``metrics/eval/<task>/<variant>.json``, which names the GLUE
task it scored under ``glue``), on each task's validation (dev) set. Official metrics and the average follow
the GLUE benchmark (Wang et al., 2019, "GLUE: A Multi-Task Benchmark and Analysis Platform for Natural Language
Understanding", and its leaderboard at gluebenchmark.com): CoLA Matthews correlation; MRPC and QQP F1 and
accuracy; STS-B Pearson and Spearman correlation; MNLI accuracy on the matched and the mismatched set; the others
accuracy. A task with two numbers scores their unweighted mean (MNLI too: it is one task of the average, as on the
leaderboard), and the GLUE average is the unweighted mean of the task scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.core.errors import PipelineError
from pipeline.core.files import write_json
from pipeline.report.tables import BASELINE, markdown_table, measured


@dataclass(frozen=True)
class GlueRow:
    """How one GLUE task is shown."""

    name: str
    """The leaderboard's name of the task (``MNLI-m/mm``)."""
    metrics: tuple[str, ...]
    """Keys of the evaluate stage's metrics file, in the order the cell shows them (``f1`` before ``accuracy``)."""
    label: str
    """What the cell holds."""


# In the leaderboard's order. Keys are the GLUE task names of ``tasks.<name>.glue``; metric keys are the names
# pipeline.tasks.glue scores under (tests/test_multitask.py checks they agree).
ROWS: dict[str, GlueRow] = {
    "cola": GlueRow("CoLA", ("matthews_correlation",), "Matthews corr."),
    "sst2": GlueRow("SST-2", ("accuracy",), "acc."),
    "mrpc": GlueRow("MRPC", ("f1", "accuracy"), "F1/acc."),
    "stsb": GlueRow("STS-B", ("pearson", "spearmanr"), "Pearson/Spearman"),
    "qqp": GlueRow("QQP", ("f1", "accuracy"), "F1/acc."),
    "mnli": GlueRow("MNLI-m/mm", ("accuracy", "accuracy_mismatched"), "acc. matched/mismatched"),
    "qnli": GlueRow("QNLI", ("accuracy",), "acc."),
    "rte": GlueRow("RTE", ("accuracy",), "acc."),
    "wnli": GlueRow("WNLI", ("accuracy",), "acc."),
}


def glue_name(task: str, variants: pd.DataFrame) -> str:
    """The GLUE task ``task``'s metrics files name under ``glue`` (empty: not a GLUE task).

    Raises:
        PipelineError: the variants disagree, or name a task GLUE does not have.
    """
    names = {str(v) for v in variants["glue"] if measured(v) and v} if "glue" in variants else set()
    if len(names) > 1:
        raise PipelineError(f"metrics/eval/{task}: variants name different GLUE tasks {sorted(names)}")
    name = names.pop() if names else ""
    if name and name not in ROWS:
        raise PipelineError(f"metrics/eval/{task}: unknown GLUE task {name!r} (known: {', '.join(ROWS)})")
    return name


def task_score(values: list) -> float | None:
    """The unweighted mean of a task's numbers, or None when one of them was not measured (or none exist)."""
    if not values or not all(measured(v) for v in values):
        return None
    return sum(float(v) for v in values) / len(values)


def _cells(row: GlueRow, variants: pd.DataFrame, names: list[str]) -> dict[str, dict]:
    """``{variant: {metric: value or None, ..., "score": task score}}`` of one task; absent variants left out."""
    out = {}
    for variant in names:
        if variant not in variants.index:
            continue
        got = variants.loc[variant]
        values = [float(got[m]) if m in got and measured(got[m]) else None for m in row.metrics]
        out[variant] = {**dict(zip(row.metrics, values)), "score": task_score(values)}
    return out


def variant_order(results: dict[str, pd.DataFrame]) -> list[str]:
    """Every variant evaluated in any task: the fine-tuned baseline first, then by name."""
    names = sorted({v for frame in results.values() for v in frame.index})
    return sorted(names, key=lambda v: v != BASELINE)


def build(results: dict[str, pd.DataFrame]) -> dict:
    """The GLUE table of a run as strict-JSON-ready data (numbers as measured: fractions, correlations).

    Args:
        results: ``{task: flat metrics, a row per variant}`` (:func:`pipeline.report.collect.collect`).

    Returns:
        ``{"split", "variants", "tasks": [{"task", "glue", "name", "metrics", "scores": {variant: {metric: value,
        "score": task score}}}], "average": {variant: GLUE average or None}, "average_over": [task], "omitted":
        [task]}``. Rows follow the leaderboard's order (tasks of one GLUE task by name). A variant's average is
        None when it lacks a task score (a task not evaluated for it, a metric not measured), and for every
        variant when two tasks of the run are the same GLUE task (the average would count it twice).
    """
    glue = {task: glue_name(task, frame) for task, frame in results.items()}
    ordered = sorted((t for t, g in glue.items() if g), key=lambda t: (list(ROWS).index(glue[t]), t))
    variants = variant_order({t: results[t] for t in ordered})
    tasks = [{"task": t, "glue": glue[t], "name": ROWS[glue[t]].name, "metrics": list(ROWS[glue[t]].metrics),
              "scores": _cells(ROWS[glue[t]], results[t], variants)} for t in ordered]
    twice = len({glue[t] for t in ordered}) < len(ordered)
    average = {}
    for variant in variants:
        scores = [row["scores"].get(variant, {}).get("score") for row in tasks]
        average[variant] = None if twice else task_score(scores)
    return {"split": "validation", "variants": variants, "tasks": tasks, "average": average,
            "average_over": ordered, "omitted": sorted(t for t, g in glue.items() if not g)}


def _percent(values: list) -> str:
    """``88.9/85.4``: each value x100 to one decimal, ``-`` where not measured."""
    return "/".join(f"{100 * v:.1f}" if measured(v) else "-" for v in values)


CONVENTIONS = (
    "Scores x100 on each task's validation (dev) set, as measured by this run's evaluate stage "
    "(`metrics/eval/<task>/<variant>.json`); nothing is copied from elsewhere. MRPC and QQP: F1 of the positive "
    "class / accuracy; STS-B: Pearson / Spearman correlation; CoLA: Matthews correlation; MNLI-m/mm: accuracy "
    "on the matched / mismatched dev set; the others: accuracy.",
    "GLUE average: the unweighted mean of the task scores, where a task with two numbers scores their mean "
    "(MRPC, QQP: F1 and accuracy; STS-B: Pearson and Spearman; MNLI: matched and mismatched accuracy, so MNLI "
    "counts once), as the GLUE leaderboard averages (Wang et al., 2019). It covers only the tasks above, on dev "
    "sets: it is not the leaderboard's nine-task test-set score. `-`: not measured (a variant without every "
    "task's numbers has no average).",
)


def markdown(table: dict) -> str:
    """``reports/glue.md``: the table of :func:`build`, its conventions, and the tasks left out."""
    parts = ["# GLUE"]
    if not table["tasks"]:
        parts.append("No GLUE task in this run (a task joins this table with `tasks.<name>.glue`).")
    else:
        frame = pd.DataFrame(
            [[ROWS[row["glue"]].label]
             + [_percent([row["scores"].get(v, {}).get(m) for m in row["metrics"]]) for v in table["variants"]]
             for row in table["tasks"]],
            index=pd.Index([f"{r['task']} ({r['name']})" for r in table["tasks"]], name="task"),
            columns=["metric", *table["variants"]])
        count = len(table["average_over"])
        frame.loc[f"GLUE average ({count} task{'s' * (count != 1)})"] = ["", *(
            _percent([table["average"][v]]) for v in table["variants"])]
        parts += ["\n".join(markdown_table(frame)), *CONVENTIONS]
        if len({r["glue"] for r in table["tasks"]}) < len(table["tasks"]):
            parts.append("Two tasks of this run are the same GLUE task: no average.")
    if table["omitted"]:
        parts.append(f"Left out (not GLUE tasks: QA, or classification without `tasks.<name>.glue`): "
                     f"{', '.join(table['omitted'])}.")
    return "\n\n".join(parts) + "\n"


def write(out: str | Path, table: dict) -> None:
    """Write a :func:`build` table to ``<out>/glue.json`` (strict JSON, undefined numbers null) and
    ``<out>/glue.md``."""
    write_json(Path(out) / "glue.json", table)
    (Path(out) / "glue.md").write_text(markdown(table))
