"""Stage prepare: build the data sets (train/validation JSON lines) and the tokenizer.

``dvc.yaml`` runs it once per data set (``--only <name>``, one stage per ``prepare.datasets`` entry, so a
change to one data set reruns only its stages) and once for the tokenizer (``--only tokenizer``); without
``--only`` it builds everything.
"""

import argparse
import sys
from pathlib import Path

from pipeline.config import loader
from pipeline.core.errors import stage_main
from pipeline.data.params import TOKENIZER, PrepareParams
from pipeline.stages.prepare import prepare_stage


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", type=Path, help="data directory: <out>/tokenizer and <out>/<dataset>/")
    p.add_argument("--only", help=f"one data set (a prepare.datasets key) or '{TOKENIZER}'; default: everything")
    p.add_argument("--metrics", type=Path, help="JSON file for rows kept, dropped and fixed per data set and split")
    return p


def reads(args) -> dict[str, type]:
    return PrepareParams.sections(args.only)


@stage_main("prepare")
def main(argv=None):
    args = parser().parse_args(argv)
    values = loader.load(reads(args))
    prepare_stage(args.only, values, args.out, args.metrics)


if __name__ == "__main__":
    sys.exit(main())
