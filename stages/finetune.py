"""Stage finetune: fine-tune the merged encoder on one task (classification or extractive QA)."""

import argparse
import sys
from pathlib import Path

from pipeline import tasks
from pipeline.config import loader
from pipeline.config.args import LaunchParams, TrainArgs
from pipeline.core.errors import stage_main
from pipeline.stages.finetune import finetune_stage


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", required=True, help="task name in params.yaml tasks")
    p.add_argument("source", type=Path, help="pretrained (merged) MLM artifact")
    p.add_argument("data", type=Path, help="task data directory")
    p.add_argument("out", type=Path, help="output artifact directory")
    p.add_argument("--live", type=Path, help="dvclive directory for the training curves")
    return p


def reads(args) -> dict[str, type]:
    return {f"tasks.{args.task}": tasks.TaskParams, f"finetune.{args.task}": TrainArgs, "launch": LaunchParams}


@stage_main("finetune")
def main(argv=None):
    args = parser().parse_args(argv)
    task_params, train, launch = loader.load(reads(args))
    finetune_stage(task_params, train, launch, args.task, args.source, args.data, args.out, args.live)


if __name__ == "__main__":
    sys.exit(main())
