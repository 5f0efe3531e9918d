"""Stage base: the starting MLM model (random init from a config, or a pretrained checkpoint)."""

import argparse
import sys
from pathlib import Path

from pipeline.config import loader
from pipeline.models.build import ArchParams
from pipeline.core.errors import stage_main
from pipeline.stages.base import base_stage


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("tokenizer", type=Path, help="tokenizer directory from prepare")
    p.add_argument("out", type=Path, help="output artifact directory")
    return p


def reads(args) -> dict[str, type]:
    return {"model": ArchParams}


@stage_main("base")
def main(argv=None):
    args = parser().parse_args(argv)
    (arch,) = loader.load(reads(args))
    base_stage(arch, args.tokenizer, args.out)


if __name__ == "__main__":
    sys.exit(main())
