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
from pipeline.core.files import atomic_dir, write_json
from pipeline.data.io import write_jsonl
from pipeline.data.labels import write_labels
from pipeline.data.params import TOKENIZER, DataSource, PrepareParams
from pipeline.data.sources import fetch_counted
from pipeline.data.vocab import check_tokenizer, save_tokenizer


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", type=Path, help="data directory: <out>/tokenizer and <out>/<dataset>/")
    p.add_argument("--only", help=f"one data set (a prepare.datasets key) or '{TOKENIZER}'; default: everything")
    p.add_argument("--metrics", type=Path, help="JSON file for rows kept, dropped and fixed per data set and split")
    return p


def reads(args) -> dict[str, type]:
    if args.only is None:
        return {"prepare": PrepareParams}
    if args.only == TOKENIZER:
        return {"prepare.tokenizer": str}
    return {"prepare.seed": int, f"prepare.datasets.{args.only}": DataSource}


@stage_main("prepare")
def main(argv=None):
    args = parser().parse_args(argv)
    values = loader.load(reads(args))
    cfg = PrepareParams.select(args.only, values)
    # Check the tokenizer, fetch and check the data, all before writing anything.
    if args.only in (None, TOKENIZER):
        check_tokenizer(cfg.tokenizer)
    fetched = {name: fetch_counted(src, name, cfg.seed) for name, src in cfg.datasets.items()}
    if args.only in (None, TOKENIZER):
        with atomic_dir(args.out / TOKENIZER) as tmp:
            save_tokenizer(cfg.tokenizer, tmp)
    for name, (splits, _) in fetched.items():
        with atomic_dir(args.out / name) as tmp:
            for split, rows in splits.items():
                write_jsonl(tmp / f"{split}.jsonl", rows)
            write_labels(tmp, cfg.datasets[name])  # class names, when known
    if args.metrics:
        write_json(args.metrics, {name: counts for name, (_, counts) in fetched.items()})


if __name__ == "__main__":
    sys.exit(main())
