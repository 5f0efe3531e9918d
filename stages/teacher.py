"""Stage teacher: train a larger model on one task, to serve as the distillation teacher."""

import argparse
import sys
from pathlib import Path

from pipeline import tasks
from pipeline.config import loader
from pipeline.config.args import LaunchParams
from pipeline.core.errors import stage_main
from pipeline.distill.teacher import TeacherParams
from pipeline.stages.teacher import teacher_stage


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
    teacher_stage(task_params, cfg, launch, args.task, args.tokenizer, args.data, args.out, args.live)


if __name__ == "__main__":
    sys.exit(main())
