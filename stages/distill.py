"""Stage distill: train a pruned student against the teacher with logit KD, keeping its sparsity."""

import argparse
import sys
from pathlib import Path

from pipeline import params
from pipeline.artifacts import atomic_dir, load_model, load_tokenizer, parents, save_model
from pipeline.distill import detach_projection, kd_loss_fn, kd_method
from pipeline.errors import stage_main
from pipeline.prune import apply_masks_, sparsity_report, zero_masks
from pipeline.runtime import is_main, setup
from pipeline.train import RunFiles
from pipeline.tasks import train_task


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", required=True, help="task name in params.yaml tasks")
    p.add_argument("student", type=Path, help="pruned artifact")
    p.add_argument("teacher", type=Path, help="teacher artifact")
    p.add_argument("data", type=Path, help="task data directory")
    p.add_argument("out", type=Path, help="output artifact directory")
    p.add_argument("--live", type=Path, help="dvclive directory for the training curves")
    return p


def reads(args) -> list[str]:
    return [f"tasks.{args.task}", "distill.kd", f"distill.train.{args.task}", "launch"]


@stage_main("distill")
def main(argv=None):
    args = parser().parse_args(argv)
    task, kd, train, launch = params.load(*reads(args))
    device = setup(train.seed, launch)
    files = RunFiles.beside(args.out, args.live)
    student, student_meta = load_model(args.student, task.type)
    teacher, _ = load_model(args.teacher, task.type)
    tokenizer = load_tokenizer(args.student)
    masks = {k: m.to(device) for k, m in zero_masks(student).items()}  # pruned zeros stay zero
    history, scores = train_task(student, task, args.data, tokenizer, train, device, f"distill {args.task}",
                                 loss_fn=kd_loss_fn(teacher.to(device), task, kd, student.to(device)),
                                 after_step=(lambda m: apply_masks_(m, masks)) if masks else None, files=files)
    detach_projection(student)  # the hidden-state projection only exists for training
    meta = {"stage": "distill", "head": task.type, "format": "dense", "method": kd_method(kd), "task": args.task,
            "pruning": student_meta["method"], "parents": parents(args.student, args.teacher, args.data),
            "history": history, "results": {**scores, "sparsity": sparsity_report(student)["sparsity"]},
            "params": params.as_dict({"task": task, "kd": kd, "train": train})}
    if is_main():
        with atomic_dir(args.out) as tmp:
            save_model(tmp, student.cpu(), args.student, meta, compact=student_meta.get("storage") == "compact")
    files.done()


if __name__ == "__main__":
    sys.exit(main())
