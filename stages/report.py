"""Stage report: per-task model cards, figures and plot data, the metric by remaining weights of every pruning
method (sweeps), and a side-by-side summary of every variant."""

import argparse
import sys
from pathlib import Path

from pipeline.core.errors import PipelineError, stage_main
from pipeline.core.files import atomic_dir, write_json
from pipeline.report.collect import collect, collect_details, eval_curves, loss_curves
from pipeline.report.sweeps import sweep_report
from pipeline.report.tables import markdown, records, summarize
from pipeline.report.task import task_report


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("metrics", type=Path, help="directory of <task>/<variant>.json metrics")
    p.add_argument("out", type=Path, help="report directory")
    p.add_argument("--details", type=Path, required=True, help="directory of <task>/<variant>.json details")
    p.add_argument("--train", type=Path, required=True, help="dvclive logs <stage>/<key>/plots/metrics/train")
    return p


def reads(args) -> dict[str, type]:
    return {}


@stage_main("report")
def main(argv=None):
    args = parser().parse_args(argv)
    results = collect(args.metrics)
    if not results:
        raise PipelineError(f"{args.metrics}: no evaluation metrics found (run the evaluate stages first)")
    details = collect_details(args.details)
    tables = summarize(results)
    with atomic_dir(args.out) as tmp:
        for task, variants in results.items():
            task_report(tmp, task, variants, details.get(task, {}), loss_curves(args.train, task),
                        eval_curves(args.train, task))
            sweep_report(tmp / task, task, variants)
        write_json(tmp / "summary.json", {task: records(table) for task, table in tables.items()})
        (tmp / "summary.md").write_text(markdown(tables))


if __name__ == "__main__":
    sys.exit(main())
