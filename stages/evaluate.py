"""Stage evaluate: task metrics, predictions, diagnostics, model facts, memory and speed vs the dense baseline."""

import argparse
import sys
from pathlib import Path

from pipeline import tasks
from pipeline.config import loader
from pipeline.core.errors import stage_main
from pipeline.evaluation import EvaluateParams
from pipeline.stages.evaluate import evaluate_stage
from pipeline.evaluation.outputs import OutputPaths


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", required=True, help="task name in params.yaml tasks")
    p.add_argument("--baseline", type=Path, required=True, help="dense fine-tuned artifact timed alongside")
    OutputPaths.add_arguments(p)
    p.add_argument("model", type=Path, help="artifact to evaluate")
    p.add_argument("data", type=Path, help="task data directory")
    p.add_argument("out", type=Path, help="metrics JSON (identity and task metrics)")
    return p


def reads(args) -> dict[str, type]:
    return {f"tasks.{args.task}": tasks.TaskParams, "evaluate": EvaluateParams}


@stage_main("evaluate")
def main(argv=None):
    args = parser().parse_args(argv)
    task_params, cfg = loader.load(reads(args))
    evaluate_stage(task_params, cfg, args.task, args.model, args.baseline, args.data, OutputPaths.from_args(args))


if __name__ == "__main__":
    sys.exit(main())
