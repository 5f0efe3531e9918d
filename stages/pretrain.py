"""Stage pretrain: masked-LM training of the base model on one corpus shard (one ``foreach`` run)."""

import argparse
import sys
from pathlib import Path

from pipeline import params
from pipeline.artifacts import atomic_dir, load_model, load_tokenizer, parents, save_model, write_json
from pipeline.data.io import read_split
from pipeline.errors import PipelineError, stage_main
from pipeline.mlm import pretrain, shard
from pipeline.runtime import is_main, setup
from pipeline.train import RunFiles


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run", required=True, help="name of the run in pretrain.runs")
    p.add_argument("base", type=Path, help="base MLM artifact")
    p.add_argument("corpus", type=Path, help="corpus data directory")
    p.add_argument("out", type=Path, help="output artifact directory")
    p.add_argument("metrics", type=Path, help="metrics JSON (perplexity per epoch)")
    p.add_argument("--live", type=Path, help="dvclive directory for the training curves")
    return p


def reads(args) -> list[str]:
    return ["pretrain.mlm", "pretrain.train", f"pretrain.runs.{args.run}", "launch"]


@stage_main("pretrain")
def main(argv=None):
    args = parser().parse_args(argv)
    mlm, train, run, launch = params.load(*reads(args))
    if run.shard >= mlm.num_shards:
        raise PipelineError(f"params.yaml: 'pretrain.runs.{args.run}.shard' must be < pretrain.mlm.num_shards")
    device = setup(run.seed, launch)
    files = RunFiles.beside(args.out, args.live)
    train.seed = run.seed
    model, _ = load_model(args.base, "mlm")
    tokenizer = load_tokenizer(args.base)
    rows = shard(read_split(args.corpus, "train", "text"), run.shard, mlm.num_shards)
    history = pretrain(model, rows, read_split(args.corpus, "validation", "text"), tokenizer, mlm, train,
                       device, f"pretrain {args.run}", files)
    meta = {"stage": "pretrain", "head": "mlm", "format": "dense", "method": "mlm", "run": args.run,
            "parents": parents(args.base, args.corpus), "history": history,
            "params": params.as_dict({"mlm": mlm, "train": train, "run": run})}
    if is_main():
        with atomic_dir(args.out) as tmp:
            save_model(tmp, model.cpu(), args.base, meta)
        write_json(args.metrics, {"perplexity": history[-1]["perplexity"], "loss": history[-1]["loss"],
                                  "epochs": {str(h["epoch"]): h for h in history}})
    files.done()


if __name__ == "__main__":
    sys.exit(main())
