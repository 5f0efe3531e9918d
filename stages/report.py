"""Stage report: per-task model cards, figures and plot data, the metric by remaining weights of every pruning
method (sweeps), a side-by-side summary of the current pipeline's variants (evaluations of other tasks,
variants, data or models are left out and listed), and the GLUE table (``glue.md``/``glue.json``: a row per
GLUE task, a column per variant, the GLUE average)."""

import argparse
import sys
from pathlib import Path
from typing import Any

from pipeline.config import loader
from pipeline.core.errors import stage_main
from pipeline.data.params import PrepareParams
from pipeline.report.cited import ReportParams
from pipeline.stages.report import report_stage
from pipeline.tasks import TaskParams


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("metrics", type=Path, help="directory of eval/, facts/, speed/ <task>/<variant>.json")
    p.add_argument("out", type=Path, help="report directory")
    p.add_argument("--details", type=Path, required=True, help="directory of <task>/<variant>.json details")
    p.add_argument("--train", type=Path, required=True, help="dvclive logs <stage>/<key>/plots/metrics/train")
    p.add_argument("--prepare", type=Path, required=True, help="metrics/prepare: rows per data set and split")
    p.add_argument("--data", type=Path, required=True, help="prepared data: <task>/ and tokenizer/ (lineage check)")
    p.add_argument("--models", type=Path, required=True, help="artifacts <task>/<variant>/ (lineage check)")
    p.add_argument("--variants", nargs="+", required=True, help="the pipeline's variants (dvc.yaml variants)")
    return p


def reads(args) -> dict[str, type]:
    return {"prepare": PrepareParams, "tasks": dict[str, TaskParams], "quantize.schemes": list[str],
            "quantize.sources": list[str], "export.sources": list[str], "prune.sweep": list[Any],
            "report": ReportParams}


@stage_main("report")
def main(argv=None):
    args = parser().parse_args(argv)
    prepare, task_params, schemes, quantized, exported, sweep, params = loader.load(reads(args))
    report_stage(prepare, task_params, schemes, quantized, exported, sweep, params, variants=args.variants,
                 metrics=args.metrics, details=args.details, train=args.train, counts=args.prepare, data=args.data,
                 models=args.models, out=args.out)


if __name__ == "__main__":
    sys.exit(main())
