"""Stage teacher: train a larger model on one task, to serve as the distillation teacher."""

import argparse
import sys
from pathlib import Path

from pipeline import tasks
from pipeline.config import loader
from pipeline.config.args import LaunchParams
from pipeline.core.errors import stage_main
from pipeline.core.files import parents
from pipeline.core.runtime import setup
from pipeline.data.labels import name_labels_
from pipeline.data.tokenizer import load_tokenizer
from pipeline.distill.teacher import TeacherParams
from pipeline.models.build import init_model
from pipeline.models.store import write_artifact
from pipeline.train.run_files import RunFiles
from pipeline.train.supervised import train_task


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", required=True, help="task name in params.yaml tasks")
    p.add_argument("tokenizer", type=Path, help="tokenizer directory from prepare")
    p.add_argument("data", type=Path, help="task data directory")
    p.add_argument("out", type=Path, help="output artifact directory")
    p.add_argument("--live", type=Path, help="dvclive directory for the training curves")
    return p


def reads(args) -> dict[str, type]:
    return {f"tasks.{args.task}": tasks.TaskParams, f"teacher.{args.task}": TeacherParams, "launch": LaunchParams}


@stage_main("teacher")
def main(argv=None):
    args = parser().parse_args(argv)
    task_params, cfg, launch = loader.load(reads(args))
    task = tasks.get(task_params)
    device = setup(cfg.train.seed, launch)
    files = RunFiles.beside(args.out, args.live)
    tokenizer = load_tokenizer(args.tokenizer)
    model = init_model(cfg.arch, task.head, len(tokenizer), tokenizer.pad_token_id, task.num_labels,
                       key=f"teacher.{args.task}.arch")
    name_labels_(model.config, args.data, task_params)  # class names into config.json
    task.check(args.task, {f"teacher.{args.task}.arch": model}, tokenizer, args.data)
    history, scores = train_task(model, task, args.data, tokenizer, cfg.train, device, f"teacher {args.task}",
                                 files=files)
    meta = {"stage": "teacher", "head": task.head, "format": "dense", "method": cfg.arch.base, "task": args.task,
            "parents": parents(args.tokenizer, args.data), "history": history, "results": scores,
            "params": loader.as_dict({"task": task_params, "teacher": cfg})}
    write_artifact(args.out, model, args.tokenizer, meta)
    files.done()


if __name__ == "__main__":
    sys.exit(main())
