"""Stage pretrain: masked-LM (BERT: optionally + next-sentence) training of the base model on one corpus shard."""

import argparse
import sys
from pathlib import Path

from pipeline.artifacts import load_model
from pipeline.config import loader
from pipeline.config.args import LaunchParams, TrainArgs
from pipeline.core.errors import stage_main
from pipeline.core.files import parents, write_json
from pipeline.core.runtime import is_main, setup
from pipeline.data.io import read_split
from pipeline.data.tokenizer import load_tokenizer
from pipeline.models.store import write_artifact
from pipeline.pretrain.mlm import MlmParams, PretrainRun, check_mlm, run_rows
from pipeline.pretrain.nsp import OBJECTIVES, Objective
from pipeline.train.run_files import RunFiles


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run", required=True, help="name of the run in pretrain.runs")
    p.add_argument("base", type=Path, help="base MLM artifact")
    p.add_argument("corpus", type=Path, help="corpus data directory")
    p.add_argument("out", type=Path, help="output artifact directory")
    p.add_argument("metrics", type=Path, help="metrics JSON (perplexity per epoch)")
    p.add_argument("--live", type=Path, help="dvclive directory for the training curves")
    return p


def reads(args) -> dict[str, type]:
    return {"pretrain.objective": Objective, "pretrain.mlm": MlmParams, "pretrain.train": TrainArgs,
            f"pretrain.runs.{args.run}": PretrainRun, "launch": LaunchParams}


@stage_main("pretrain")
def main(argv=None):
    args = parser().parse_args(argv)
    objective, mlm, train, run, launch = loader.load(reads(args))
    rows = run_rows(args.corpus, args.run, run, mlm)
    device = setup(run.seed, launch)
    files = RunFiles.beside(args.out, args.live)
    train.seed = run.seed
    model, _ = load_model(args.base, "mlm")
    tokenizer = load_tokenizer(args.base)
    check_mlm(mlm, model, tokenizer, str(args.base))
    history = OBJECTIVES[objective](model, rows, read_split(args.corpus, "validation", "text"), tokenizer, mlm,
                                    train, device, f"pretrain {args.run}", files)
    write_artifact(args.out, model, args.base, {"stage": "pretrain", "head": "mlm", "format": "dense", "method": objective,
                   "run": args.run, "parents": parents(args.base, args.corpus), "history": history,
                   "params": loader.as_dict({"mlm": mlm, "train": train, "run": run})})
    if is_main():
        write_json(args.metrics, {"perplexity": history[-1]["perplexity"], "loss": history[-1]["loss"],
                                  "epochs": {str(h["epoch"]): h for h in history}})
    files.done()


if __name__ == "__main__":
    sys.exit(main())
