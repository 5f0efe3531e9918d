"""Stage report: per-task model cards, figures and plot data, and a side-by-side summary of the current pipeline's
variants (evaluations of other tasks, variants, data or models are left out and listed)."""

import argparse
import sys
from pathlib import Path

from pipeline.core.errors import stage_main
from pipeline.core.files import atomic_dir, write_json
from pipeline.report.collect import Pipeline, collect, eval_curves, left_out_markdown, loss_curves
from pipeline.report.tables import markdown, records, summarize
from pipeline.report.task import task_report


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("metrics", type=Path, help="metrics root: eval/, facts/, speed/ with <task>/<variant>.json")
    p.add_argument("out", type=Path, help="report directory")
    p.add_argument("--details", type=Path, required=True, help="directory of <task>/<variant>.json details")
    p.add_argument("--train", type=Path, required=True, help="dvclive logs <stage>/<key>/plots/metrics/train")
    p.add_argument("--data", type=Path, required=True, help="prepared data: <task>/ and tokenizer/ (lineage check)")
    p.add_argument("--models", type=Path, required=True, help="artifacts <task>/<variant>/ (lineage check)")
    p.add_argument("--tasks", nargs="+", required=True, help="the pipeline's tasks (dvc.yaml task_names)")
    p.add_argument("--variants", nargs="+", required=True, help="the pipeline's variants (dvc.yaml variants)")
    return p


def reads(args) -> dict[str, type]:
    return {}


@stage_main("report")
def main(argv=None):
    args = parser().parse_args(argv)
    found = collect(args.metrics, args.details, Pipeline(args.tasks, args.variants, args.data, args.models))
    tables = summarize(found.results)
    with atomic_dir(args.out) as tmp:
        for task, variants in found.results.items():
            kept = set(variants.index)
            task_report(tmp, task, variants, found.details[task], loss_curves(args.train, task, kept),
                        eval_curves(args.train, task, kept))
            with open(tmp / task / "MODEL_CARD.md", "a") as card:
                card.write(left_out_markdown(found.left_out, task))
        write_json(tmp / "summary.json", {task: records(table) for task, table in tables.items()})
        (tmp / "summary.md").write_text(markdown(tables) + left_out_markdown(found.left_out))


if __name__ == "__main__":
    sys.exit(main())
