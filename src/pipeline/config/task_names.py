"""The task names: the keys of ``tasks`` in ``params.yaml`` are the pipeline's tasks, and every section that
is kept per task must name exactly those.

``dvc.yaml`` expands the per-task stages over the keys of ``tasks`` and one prepare stage over the keys of
``prepare.datasets``, so the names are written in ``params.yaml`` only. This module checks that they agree
(:func:`check_task_lists`); :func:`pipeline.schema.check_file` runs it with the section checks, and
``tests/test_multitask.py`` on the shipped params. Like :mod:`pipeline.schema` it looks at the whole file, so no
stage imports it.
"""

from __future__ import annotations

from typing import Any

from pipeline.config.loader import PARAMS_FILE, lookup
from pipeline.core.errors import PipelineError

PER_TASK = ("finetune", "teacher", "distill.train")
"""Sections with one entry per task (``finetune.<task>`` ...), besides ``tasks`` and ``prepare.datasets``."""
NAMED = ("prepare.datasets", "tasks", *PER_TASK)
"""Sections whose keys are task or data set names (a profile may add and remove entries there)."""
CORPUS = "corpus"
"""The data set pretraining reads (``data/corpus``); a text corpus, not a task."""


def _mapping(raw: dict, path: str) -> dict:
    node = lookup(raw, path)
    if not isinstance(node, dict):
        raise PipelineError(f"{PARAMS_FILE}: '{path}' must be a mapping of names, got {type(node).__name__}")
    return node


def task_names(raw: dict) -> list[str]:
    """The tasks of a raw params mapping: the keys of ``tasks``, in file order.

    Raises:
        PipelineError: ``tasks`` is missing, not a mapping, or empty.
    """
    names = list(_mapping(raw, "tasks"))
    if not names:
        raise PipelineError(f"{PARAMS_FILE}: 'tasks' names no task")
    return [str(n) for n in names]


def _check_no_dots(raw: dict) -> None:
    """Task and data set names become params paths (``tasks.<name>``) and ``--task`` arguments; a dot would
    split the name into two keys, so it is refused here, before a stage reads a path that cannot exist."""
    for section in NAMED:
        node = lookup(raw, section)
        for name in node if isinstance(node, dict) else ():
            if "." in str(name):
                raise PipelineError(
                    f"{PARAMS_FILE}: '{section}.{name}': the name '{name}' contains a dot, which separates the parts "
                    f"of a params path; rename it without dots (e.g. '{str(name).replace('.', '_')}')")


def _entry_field(entry: Any, key: str) -> Any:
    return entry.get(key) if isinstance(entry, dict) else None


def _check_datasets(raw: dict, tasks: list[str]) -> None:
    """Each task has a data set of its type (and GLUE task); the other data sets are the text corpus."""
    datasets = _mapping(raw, "prepare.datasets")
    for name in tasks:
        if name not in datasets:
            raise PipelineError(f"{PARAMS_FILE}: task '{name}' has no data set 'prepare.datasets.{name}'")
        task, data = lookup(raw, f"tasks.{name}"), datasets[name]
        if _entry_field(data, "evaluation_only"):
            raise PipelineError(f"{PARAMS_FILE}: 'prepare.datasets.{name}.evaluation_only': task '{name}' trains "
                                f"on its data set ({', '.join(PER_TASK)}); give the evaluation-only data another name "
                                "and evaluate the task's models on it with stages/evaluate.py")
        for key in ("type", "glue"):
            theirs, ours = _entry_field(data, key), _entry_field(task, key)
            if theirs and theirs != ours:
                raise PipelineError(f"{PARAMS_FILE}: 'prepare.datasets.{name}.{key}' is {theirs!r} but "
                                    f"'tasks.{name}.{key}' is {ours!r}")
    for name, data in datasets.items():
        kind, evaluated = _entry_field(data, "type"), _entry_field(data, "evaluation_only")
        if name == CORPUS and evaluated:
            raise PipelineError(f"{PARAMS_FILE}: 'prepare.datasets.{CORPUS}.evaluation_only': pretraining trains on it")
        if name not in tasks and (name != CORPUS or kind != "text") and not (evaluated and kind != "text"):
            raise PipelineError(
                f"{PARAMS_FILE}: data set 'prepare.datasets.{name}' (type {kind!r}) is no task: add "
                f"'tasks.{name}' and its {', '.join(PER_TASK)} sections, set its evaluation_only: true (data that "
                f"only evaluates a task's models), or remove it (only '{CORPUS}', type 'text', feeds pretraining)")
    if CORPUS not in datasets:
        raise PipelineError(f"{PARAMS_FILE}: missing data set 'prepare.datasets.{CORPUS}' (type text, for pretraining)")


def check_task_lists(raw: dict) -> list[str]:
    """Check that ``tasks``, ``prepare.datasets`` and the per-task sections (:data:`PER_TASK`) name the same
    tasks, and that each task's data set has its type and GLUE task.

    Args:
        raw: the params mapping as read from YAML.

    Returns:
        the task names, in ``tasks`` order.

    Raises:
        PipelineError: the first disagreement, naming the key (a task without its ``finetune.<task>``, a
            ``teacher.<name>`` that is no task, a data set without a task, a type or GLUE task that differs).
    """
    tasks = task_names(raw)
    _check_no_dots(raw)
    for section in PER_TASK:
        entries = _mapping(raw, section)
        missing = [t for t in tasks if t not in entries]
        if missing:
            raise PipelineError(f"{PARAMS_FILE}: task '{missing[0]}' has no '{section}.{missing[0]}' section")
        extra = [name for name in entries if name not in tasks]
        if extra:
            raise PipelineError(f"{PARAMS_FILE}: '{section}.{extra[0]}' is no task (tasks: {', '.join(tasks)})")
    _check_datasets(raw, tasks)
    return tasks
