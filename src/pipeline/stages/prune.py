"""The prune stage's work (``stages/prune.py``): one registered method applied to a fine-tuned artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline import tasks
from pipeline.config import loader
from pipeline.config.args import LaunchParams
from pipeline.core.files import parents
from pipeline.core.runtime import setup
from pipeline.data.tokenizer import load_tokenizer
from pipeline.artifacts import load_model
from pipeline.prune import METHODS, EncodedOnce, PruneContext, check_method, prune_, write_pruned
from pipeline.prune.sweep import at_point
from pipeline.train.run_files import RunFiles
from pipeline.train.supervised import trainer


def prune_stage(task_params: tasks.TaskParams, cfg: Any, launch: LaunchParams, task_name: str, method_name: str,
                source: Path, data: Path, out: Path, live: Path | None = None, target: Any = None) -> None:
    """Prune the artifact ``source`` with the method ``method_name`` (its params ``cfg``) and write ``out``.

    Args:
        task_name: the task's name (``tasks.<task_name>`` gave ``task_params``).
        data: the task's data directory: training rows for importance batches and training methods.
        live: dvclive directory for a training method's curves (None: none written).
        target: a sweep point's value of the method's registered target (None: not a sweep point).

    Writes: the artifact ``out`` (``pipeline.json`` holds the method's ``results`` and, for a sweep point,
    ``sweep``); a training method's curves into ``live`` and its checkpoint beside ``out`` until done.

    Raises:
        PipelineError: an unknown method, a model, tokenizer or data set that does not fit the task, or
        params the method rejects (checked before any importance batch or training).
    """
    task = tasks.get(task_params)
    method = METHODS.get(method_name)
    device = setup(0, launch)
    cfg, sweep = at_point(method, cfg, target)
    files = RunFiles.beside(out, live)
    model, _ = load_model(source, task.head)
    tokenizer = load_tokenizer(source)
    task.check(task_name, {source: model}, tokenizer, data)
    check_method(model, method, cfg)  # before importance batches or training; the work runs on `device`
    rows = task.rows(data, "train") if method.batches else []  # only the rows its batches need
    context = PruneContext.for_task(task, rows, tokenizer, method.examples(cfg), device=device)
    if method.trains:  # reseeded after loading: training starts from its own seed; the splits are encoded once
        context.train = trainer(EncodedOnce(task), data, tokenizer, cfg.train, setup(cfg.train.seed, launch),
                                f"prune {task_name} {method_name}", files)
    meta = {"stage": "prune", "head": task.head, "format": "dense", "method": method_name, "task": task_name,
            "parents": parents(source, data), "results": prune_(model, method, cfg, context),
            "params": loader.as_dict({"task": task_params, method_name: cfg}), **sweep}
    write_pruned(out, model, source, meta, compact=method.zeroing)
    files.done()
