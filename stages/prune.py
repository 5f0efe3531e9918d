"""Stage prune: prune a fine-tuned model with one registered method (``src/pipeline/prune/<method>.py``)."""

import argparse
import json
import sys
from pathlib import Path

from pipeline import tasks
from pipeline.config import loader
from pipeline.config.args import LaunchParams
from pipeline.core.errors import stage_main
from pipeline.prune import METHODS
from pipeline.stages.prune import prune_stage


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", required=True, help="task name in params.yaml tasks")
    p.add_argument("--method", required=True, help="pruning method (a prune.<method> section)")
    p.add_argument("source", type=Path, help="fine-tuned artifact")
    p.add_argument("data", type=Path, help="task data directory (importance estimation)")
    p.add_argument("out", type=Path, help="output artifact directory")
    p.add_argument("--live", type=Path, help="dvclive directory for the training curves (training methods)")
    p.add_argument("--target", type=json.loads, help="a sweep point's value of the method's target (prune.sweep)")
    return p


def reads(args) -> dict[str, type]:
    return {f"tasks.{args.task}": tasks.TaskParams, f"prune.{args.method}": METHODS.get(args.method).params,
            "launch": LaunchParams}


@stage_main("prune")
def main(argv=None):
    args = parser().parse_args(argv)
    task_params, cfg, launch = loader.load(reads(args))
    prune_stage(task_params, cfg, launch, args.task, args.method, args.source, args.data, args.out, args.live,
                args.target)


if __name__ == "__main__":
    sys.exit(main())
