"""Stage base: the starting MLM model (random init from a config, or a pretrained checkpoint)."""

import argparse
import sys
from pathlib import Path

from pipeline.config import loader
from pipeline.core.errors import stage_main
from pipeline.core.files import parents
from pipeline.core.runtime import setup
from pipeline.data.tokenizer import load_tokenizer
from pipeline.models.build import ArchParams, init_model
from pipeline.models.store import write_artifact


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
    setup(arch.seed)
    tokenizer = load_tokenizer(args.tokenizer)
    model = init_model(arch, "mlm", len(tokenizer), tokenizer.pad_token_id)
    meta = {"stage": "base", "head": "mlm", "format": "dense", "method": "scratch" if arch.base == "scratch"
            else "pretrained", "parents": parents(args.tokenizer), "params": loader.as_dict(arch)}
    write_artifact(args.out, model, args.tokenizer, meta)


if __name__ == "__main__":
    sys.exit(main())
