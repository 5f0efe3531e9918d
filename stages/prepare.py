"""Stage prepare: build the data sets (train/validation JSON lines) and the tokenizer."""

import argparse
import sys
from pathlib import Path

from pipeline.config import loader
from pipeline.core.errors import stage_main
from pipeline.core.files import atomic_dir, write_json
from pipeline.data.io import write_jsonl
from pipeline.data.params import PrepareParams
from pipeline.data.sources import fetch_counted


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", type=Path, help="data directory: <out>/tokenizer and <out>/<dataset>/")
    p.add_argument("--metrics", type=Path, help="JSON file for rows kept, dropped and fixed per data set and split")
    return p


def reads(args) -> dict[str, type]:
    return {"prepare": PrepareParams}


@stage_main("prepare")
def main(argv=None):
    args = parser().parse_args(argv)
    (cfg,) = loader.load(reads(args))
    # Check the tokenizer, fetch and check the data, all before writing anything.
    if cfg.tokenizer != "synthetic":
        from pipeline.data.tokenizer import load_tokenizer

        tokenizer = load_tokenizer(cfg.tokenizer)
    fetched = {name: fetch_counted(src, name, cfg.seed) for name, src in cfg.datasets.items()}
    with atomic_dir(args.out / "tokenizer") as tmp:
        if cfg.tokenizer == "synthetic":
            from pipeline.data.vocab import build_tokenizer

            build_tokenizer(tmp)
        else:
            tokenizer.save_pretrained(tmp)
    for name, (splits, _) in fetched.items():
        with atomic_dir(args.out / name) as tmp:
            for split, rows in splits.items():
                write_jsonl(tmp / f"{split}.jsonl", rows)
    if args.metrics:
        write_json(args.metrics, {name: counts for name, (_, counts) in fetched.items()})


if __name__ == "__main__":
    sys.exit(main())
