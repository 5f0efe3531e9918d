"""Stage report: per-task model cards, figures and plot data, a side-by-side summary of every variant, and the
GLUE table (``glue.md``/``glue.json``: a row per GLUE task, a column per variant, the GLUE average)."""

import argparse
import sys
from pathlib import Path

from pipeline.config import loader
from pipeline.core.errors import PipelineError, stage_main
from pipeline.core.files import atomic_dir, write_json
from pipeline.data.params import PrepareParams
from pipeline.report.card import CardInputs
from pipeline.report.cited import ReportParams, check_cited
from pipeline.report import glue_table
from pipeline.report.collect import collect, collect_details, eval_curves, loss_curves
from pipeline.report.describe import read_counts
from pipeline.report.epochs import epoch_frame
from pipeline.report.tables import markdown, records, summarize
from pipeline.report.task import task_report


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("metrics", type=Path, help="directory of <task>/<variant>.json metrics")
    p.add_argument("out", type=Path, help="report directory")
    p.add_argument("--details", type=Path, required=True, help="directory of <task>/<variant>.json details")
    p.add_argument("--train", type=Path, required=True, help="dvclive logs <stage>/<key>/plots/metrics/train")
    p.add_argument("--prepare", type=Path, required=True, help="metrics/prepare (or one JSON file): rows per data set and split")
    return p


def reads(args) -> dict[str, type]:
    return {"prepare": PrepareParams, "report": ReportParams}


@stage_main("report")
def main(argv=None):
    args = parser().parse_args(argv)
    prepare, params = loader.load(reads(args))
    results = collect(args.metrics)
    if not results:
        raise PipelineError(f"{args.metrics}: no evaluation metrics found (run the evaluate stages first)")
    check_cited(params.cited, results)
    counts = read_counts(args.prepare)
    details = collect_details(args.details)
    tables, glue = summarize(results), glue_table.build(results)
    with atomic_dir(args.out) as tmp:
        for task, variants in results.items():
            inputs = CardInputs(epoch_frame(args.train, task), prepare, counts.get(task), params.cited)
            task_report(tmp, task, variants, details.get(task, {}), loss_curves(args.train, task),
                        eval_curves(args.train, task), inputs)
        write_json(tmp / "summary.json", {task: records(table) for task, table in tables.items()})
        glue_table.write(tmp, glue)
        link = f"GLUE table ({len(glue['tasks'])} GLUE task(s) of this run): [glue.md](glue.md)"
        (tmp / "summary.md").write_text(markdown(tables).replace("\n\n", f"\n\n{link}\n\n", 1))


if __name__ == "__main__":
    sys.exit(main())
