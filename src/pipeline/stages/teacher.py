"""The teacher stage's work (``stages/teacher.py``): a larger model trained on one task, to serve as the
distillation teacher."""

from __future__ import annotations

from pathlib import Path

from pipeline import tasks
from pipeline.config import loader
from pipeline.config.args import LaunchParams
from pipeline.core.files import parents
from pipeline.core.runtime import setup
from pipeline.data.labels import name_labels_
from pipeline.data.tokenizer import load_tokenizer
from pipeline.models.build import init_model
from pipeline.models.store import write_artifact
from pipeline.train.run_files import RunFiles
from pipeline.distill.teacher import TeacherParams
from pipeline.train.supervised import train_task


def teacher_stage(task_params: tasks.TaskParams, cfg: TeacherParams, launch: LaunchParams, task_name: str,
                  tokenizer_dir: Path, data: Path, out: Path, live: Path | None = None) -> None:
    """Build the teacher of ``cfg.arch`` (vocabulary of ``tokenizer_dir``), train it on ``data``, write ``out``.

    Args:
        task_name: the task's name (``tasks.<task_name>`` gave ``task_params``; ``teacher.<task_name>`` ``cfg``).
        live: dvclive directory for the training curves (None: none written).

    Writes: the artifact ``out`` (``method`` is ``cfg.arch.base``), the curves into ``live``, and a resumable
    checkpoint beside ``out`` until the artifact is written.

    Raises:
        PipelineError: an architecture, tokenizer or data set that does not fit the task (before training).
    """
    task = tasks.get(task_params)
    device = setup(cfg.train.seed, launch)
    files = RunFiles.beside(out, live)
    tokenizer = load_tokenizer(tokenizer_dir)
    model = init_model(cfg.arch, task.head, len(tokenizer), tokenizer.pad_token_id, task.num_labels,
                       key=f"teacher.{task_name}.arch")
    name_labels_(model.config, data, task_params)  # class names into config.json
    task.check(task_name, {f"teacher.{task_name}.arch": model}, tokenizer, data)
    history, scores = train_task(model, task, data, tokenizer, cfg.train, device, f"teacher {task_name}",
                                 files=files)
    meta = {"stage": "teacher", "head": task.head, "format": "dense", "method": cfg.arch.base, "task": task_name,
            "parents": parents(tokenizer_dir, data), "history": history, "results": scores,
            "params": loader.as_dict({"task": task_params, "teacher": cfg})}
    write_artifact(out, model, tokenizer_dir, meta)
    files.done()
