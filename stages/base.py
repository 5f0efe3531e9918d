"""Stage base: the starting MLM model (random init from a config, or a pretrained checkpoint)."""

import argparse
import sys
from pathlib import Path

from pipeline import params
from pipeline.artifacts import atomic_dir, load_tokenizer, parents, save_model
from pipeline.errors import stage_main
from pipeline.models import init_model
from pipeline.runtime import setup


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("tokenizer", type=Path, help="tokenizer directory from prepare")
    p.add_argument("out", type=Path, help="output artifact directory")
    return p


def reads(args) -> list[str]:
    return ["model"]


@stage_main("base")
def main(argv=None):
    args = parser().parse_args(argv)
    (arch,) = params.load(*reads(args))
    setup(arch.seed)
    tokenizer = load_tokenizer(args.tokenizer)
    model = init_model(arch, "mlm", len(tokenizer), tokenizer.pad_token_id)
    meta = {"stage": "base", "head": "mlm", "format": "dense", "method": "scratch" if arch.base == "scratch"
            else "pretrained", "parents": parents(args.tokenizer), "params": params.as_dict(arch)}
    with atomic_dir(args.out) as tmp:
        save_model(tmp, model, args.tokenizer, meta)


if __name__ == "__main__":
    sys.exit(main())
