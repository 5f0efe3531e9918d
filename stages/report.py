"""Stage report: a side-by-side summary (markdown + JSON) of every evaluated variant."""

import argparse
import sys
from pathlib import Path

from pipeline.artifacts import atomic_write_text, write_json
from pipeline.errors import PipelineError, stage_main
from pipeline.report import collect, markdown, summarize


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("metrics", type=Path, help="directory of <task>/<variant>.json metrics")
    p.add_argument("out", type=Path, help="report directory")
    return p


def reads(args) -> list[str]:
    return []


@stage_main("report")
def main(argv=None):
    args = parser().parse_args(argv)
    results = collect(args.metrics)
    if not results:
        raise PipelineError(f"{args.metrics}: no evaluation metrics found (run the evaluate stages first)")
    table = summarize(results)
    write_json(args.out / "summary.json", table)
    atomic_write_text(args.out / "summary.md", markdown(table))


if __name__ == "__main__":
    sys.exit(main())
