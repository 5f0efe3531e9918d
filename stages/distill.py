"""Stage distill: train a pruned student against the teacher with KD, keeping its sparsity and shapes."""

import argparse
import sys
from pathlib import Path

from pipeline import tasks
from pipeline.config import loader
from pipeline.config.args import LaunchParams, TrainArgs
from pipeline.core.errors import stage_main
from pipeline.stages.distill import distill_stage
from pipeline.distill.kd import KDParams


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
    distill_stage(task_params, kd, train, launch, args.task, args.student, args.teacher, args.data, args.out,
                  args.live)


if __name__ == "__main__":
    sys.exit(main())
