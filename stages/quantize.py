"""Stage quantize: one registered scheme of ``quantize.schemes`` (given by dvc.yaml's matrix; only its own
``quantize.<scheme>`` knobs are read), stored as SafeTensors, with the reloaded model's logit error measured."""

import argparse
import sys
from pathlib import Path

from pipeline import tasks
from pipeline.config import loader
from pipeline.core.errors import stage_main
from pipeline.quantize import SCHEMES, LogitErrorParams
from pipeline.stages.quantize import quantize_stage


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", required=True, help="task name in params.yaml tasks")
    p.add_argument("--scheme", required=True, help="registered scheme (an entry of params.yaml quantize.schemes)")
    p.add_argument("source", type=Path, help="artifact to quantize")
    p.add_argument("data", type=Path, help="task data directory (validation inputs for the logit error)")
    p.add_argument("out", type=Path, help="output artifact directory")
    return p


def reads(args) -> dict[str, type]:
    knobs = SCHEMES.get(args.scheme, "quantize.schemes").params
    return {f"tasks.{args.task}": tasks.TaskParams, f"quantize.{args.scheme}": knobs,
            "quantize.logit_error": LogitErrorParams}


@stage_main("quantize")
def main(argv=None):
    args = parser().parse_args(argv)
    task_params, cfg, error = loader.load(reads(args))
    quantize_stage(task_params, cfg, error, args.task, args.scheme, args.source, args.data, args.out)


if __name__ == "__main__":
    sys.exit(main())
