"""Stage distill: train a pruned student against the teacher with KD, keeping its sparsity and shapes."""

import argparse
import sys
from pathlib import Path

from pipeline import tasks
from pipeline.artifacts import load_model
from pipeline.config import loader
from pipeline.config.args import LaunchParams, TrainArgs
from pipeline.core.errors import stage_main
from pipeline.core.files import parents
from pipeline.core.runtime import setup
from pipeline.data.tokenizer import load_tokenizer
from pipeline.distill.kd import KDParams, check_distillation, distill_student, kd_method, weaker_teacher
from pipeline.prune import write_pruned
from pipeline.prune.masks import sparsity_report
from pipeline.train.run_files import RunFiles


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", required=True, help="task name in params.yaml tasks")
    p.add_argument("student", type=Path, help="pruned artifact")
    p.add_argument("teacher", type=Path, help="teacher artifact")
    p.add_argument("data", type=Path, help="task data directory")
    p.add_argument("out", type=Path, help="output artifact directory")
    p.add_argument("--live", type=Path, help="dvclive directory for the training curves")
    return p


def reads(args) -> dict[str, type]:
    return {f"tasks.{args.task}": tasks.TaskParams, "distill.kd": KDParams, f"distill.train.{args.task}": TrainArgs,
            "launch": LaunchParams}


@stage_main("distill")
def main(argv=None):
    args = parser().parse_args(argv)
    task_params, kd, train, launch = loader.load(reads(args))
    task = tasks.get(task_params)
    device = setup(train.seed, launch)
    files = RunFiles.beside(args.out, args.live)
    student, student_meta = load_model(args.student, task.head)
    (teacher, teacher_meta), tokenizer = load_model(args.teacher, task.head), load_tokenizer(args.student)
    check_distillation(task, args.task, kd, {args.student: student, args.teacher: teacher}, tokenizer, args.data)
    history, scores = distill_student(student, teacher, task, kd, args.data, tokenizer, train, device,
                                      f"distill {args.task}", files)
    if note := weaker_teacher(teacher_meta, scores, task.primary_metric):
        print(f"distill {args.task}: {note}", file=sys.stderr)
    meta = {"stage": "distill", "head": task.head, "format": "dense", "method": kd_method(kd), "task": args.task,
            "pruning": student_meta["method"], "parents": parents(args.student, args.teacher, args.data),
            "history": history, "results": {**scores, "sparsity": sparsity_report(student)["sparsity"]},
            "params": loader.as_dict({"task": task_params, "kd": kd, "train": train})}
    write_pruned(args.out, student, args.student, meta, compact=student_meta.get("storage") == "compact")
    files.done()


if __name__ == "__main__":
    sys.exit(main())
