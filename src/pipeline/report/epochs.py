"""Per-epoch training records of a task's runs, read from the dvclive logs the training stages write.

Every training run (:func:`pipeline.train.loop.fit`) logs, per epoch and at the optimizer step the epoch
ended, the mean training loss (``plots/metrics/train/epoch_loss.tsv``) and the validation scores of
:func:`pipeline.train.supervised.epoch_scores` (``plots/metrics/eval/<name>.tsv``: the task's metrics, ``val_loss``
and, for classification, ``accuracy`` and macro ``macro_precision``/``macro_recall``/``macro_f1``). This
module joins them into one table, a row per run and epoch; it computes nothing.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.report.collect import read_tsv

# Columns every epoch table has before the logged values.
KEYS = ("run", "variant", "epoch", "step")


def run_variant(run: str, task: str) -> str:
    """The evaluated variant a run produced: ``finetune/cls`` -> ``finetune``, ``distill/cls-heads`` ->
    ``distill-heads`` (the stage, then the key without the task)."""
    stage, key = run.split("/", 1)
    return stage if key == task else f"{stage}-{key[len(task) + 1:]}"


def task_runs(train_dir: str | Path, task: str) -> dict[str, Path]:
    """``{"<stage>/<key>": dvclive metrics dir}`` of the runs of ``task`` (key ``task`` or ``task-*``) that
    logged epochs (``plots/metrics/train/epoch_loss.tsv``); runs that did not train have none."""
    out = {}
    for path in sorted(Path(train_dir).glob("*/*/plots/metrics/train/epoch_loss.tsv")):
        key_dir = path.parents[3]
        if key_dir.name == task or key_dir.name.startswith(f"{task}-"):
            out[f"{key_dir.parent.name}/{key_dir.name}"] = path.parents[1]
    return out


def _run_frame(run: str, metrics_dir: Path, task: str) -> pd.DataFrame:
    """One run's epochs: ``epoch_loss`` joined with every ``eval/*.tsv`` on the step (an undefined metric
    left no row in its file: NA there)."""
    epochs = read_tsv(metrics_dir / "train" / "epoch_loss.tsv")
    if not epochs:
        return pd.DataFrame()
    table = pd.DataFrame(epochs).rename(columns={"epoch_loss": "train_loss"})
    for path in sorted((metrics_dir / "eval").glob("*.tsv")):
        rows = read_tsv(path)
        if rows:
            table = table.merge(pd.DataFrame(rows).rename(columns={c: path.stem for c in rows[0] if c != "step"}),
                                on="step", how="left")
    table = table.sort_values("step").reset_index(drop=True)
    table["step"] = table["step"].astype(int)
    table.insert(0, "epoch", range(1, len(table) + 1))
    table.insert(0, "variant", run_variant(run, task))
    table.insert(0, "run", run)
    return table


def epoch_frame(train_dir: str | Path, task: str) -> pd.DataFrame:
    """Every epoch of ``task``'s training runs, long format.

    Args:
        train_dir: the training logs, ``<train_dir>/<stage>/<key>/plots/metrics/`` (``metrics/train``).
        task: the task's name.

    Returns:
        columns ``run``, ``variant``, ``epoch`` (1-based), ``step`` (optimizer steps done), ``train_loss``, then
        each logged validation value by its name (e.g. ``val_loss``, ``accuracy``, ``macro_f1``; QA ``f1``),
        runs sorted; empty (with the key columns) when no run logged an epoch.
    """
    frames = [_run_frame(run, path, task) for run, path in task_runs(train_dir, task).items()]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=[*KEYS, "train_loss"])
    return pd.concat(frames, ignore_index=True)
