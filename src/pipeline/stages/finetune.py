"""The finetune stage's work (``stages/finetune.py``): the merged encoder fine-tuned on one task
(classification or extractive QA)."""

from __future__ import annotations

from pathlib import Path

from pipeline import tasks
from pipeline.config import loader
from pipeline.config.args import LaunchParams, TrainArgs
from pipeline.core.files import parents
from pipeline.core.runtime import setup
from pipeline.data.labels import name_labels_
from pipeline.data.tokenizer import load_tokenizer
from pipeline.models.build import with_head
from pipeline.artifacts import load_model
from pipeline.models.store import write_artifact
from pipeline.train.run_files import RunFiles
from pipeline.train.supervised import train_task


def finetune_stage(task_params: tasks.TaskParams, train: TrainArgs, launch: LaunchParams, task_name: str,
                   source: Path, data: Path, out: Path, live: Path | None = None) -> None:
    """Put the task's head on the MLM artifact ``source``'s encoder, train it on ``data`` and write ``out``.

    Args:
        task_name: the task's name (``tasks.<task_name>`` gave ``task_params``).
        live: dvclive directory for the training curves (None: none written).

    Writes: the artifact ``out`` (class names in ``config.json``; history and scores in ``pipeline.json``),
    the curves into ``live``, and a resumable checkpoint beside ``out`` until the artifact is written.

    Raises:
        PipelineError: a model, tokenizer or data set that does not fit the task (checked before training).
    """
    task = tasks.get(task_params)
    device = setup(train.seed, launch)
    files = RunFiles.beside(out, live)
    encoder, _ = load_model(source, "mlm")
    model = with_head(encoder, task.head, task.num_labels, train.seed)
    tokenizer = load_tokenizer(source)
    name_labels_(model.config, data, task_params)  # class names into config.json
    task.check(task_name, {source: model}, tokenizer, data)  # before any training
    history, scores = train_task(model, task, data, tokenizer, train, device, f"finetune {task_name}", files=files)
    meta = {"stage": "finetune", "head": task.head, "format": "dense", "method": "full", "task": task_name,
            "parents": parents(source, data), "history": history, "results": scores,
            "params": loader.as_dict({"task": task_params, "train": train})}
    write_artifact(out, model, source, meta)
    files.done()
