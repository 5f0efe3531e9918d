"""The distill stage's work (``stages/distill.py``): a pruned student trained against its teacher with
knowledge distillation, keeping the student's sparsity and shapes."""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline import tasks
from pipeline.config import loader
from pipeline.config.args import LaunchParams, TrainArgs
from pipeline.core.files import parents
from pipeline.core.runtime import setup
from pipeline.data.tokenizer import load_tokenizer
from pipeline.distill.kd import KDParams, check_distillation, distill_student, kd_method, weaker_teacher
from pipeline.artifacts import load_model
from pipeline.prune import write_pruned
from pipeline.prune.masks import sparsity_report
from pipeline.train.run_files import RunFiles


def distill_stage(task_params: tasks.TaskParams, kd: KDParams, train: TrainArgs, launch: LaunchParams,
                  task_name: str, student_dir: Path, teacher_dir: Path, data: Path, out: Path,
                  live: Path | None = None) -> None:
    """Distill the teacher artifact ``teacher_dir`` into the pruned student ``student_dir``; write ``out``.

    Args:
        task_name: the task's name (``tasks.<task_name>`` gave ``task_params``).
        data: the task's data directory.
        live: dvclive directory for the training curves (None: none written).

    Writes: the artifact ``out`` (compact storage when the student was compact; ``pipeline.json`` holds the
    history, the scores and the sparsity kept); the curves into ``live``; a note on stderr when the teacher
    scores below the student.

    Raises:
        PipelineError: models, tokenizer or data that do not fit the task or each other
        (:func:`~pipeline.distill.kd.check_distillation`).
    """
    task = tasks.get(task_params)
    device = setup(train.seed, launch)
    files = RunFiles.beside(out, live)
    student, student_meta = load_model(student_dir, task.head)
    teacher, teacher_meta = load_model(teacher_dir, task.head)
    tokenizer = load_tokenizer(student_dir)
    check_distillation(task, task_name, kd, {student_dir: student, teacher_dir: teacher}, tokenizer, data)
    history, scores = distill_student(student, teacher, task, kd, data, tokenizer, train, device,
                                      f"distill {task_name}", files)
    if note := weaker_teacher(teacher_meta, scores, task.primary_metric):
        print(f"distill {task_name}: {note}", file=sys.stderr)
    meta = {"stage": "distill", "head": task.head, "format": "dense", "method": kd_method(kd), "task": task_name,
            "pruning": student_meta["method"], "parents": parents(student_dir, teacher_dir, data),
            "history": history, "results": {**scores, "sparsity": sparsity_report(student)["sparsity"]},
            "params": loader.as_dict({"task": task_params, "kd": kd, "train": train})}
    write_pruned(out, student, student_dir, meta, compact=student_meta.get("storage") == "compact")
    files.done()
