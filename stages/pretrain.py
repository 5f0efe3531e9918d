"""Stage pretrain: masked-LM (BERT: optionally + next-sentence) training of the base model on one corpus shard."""

import argparse
import sys
from pathlib import Path

from pipeline.config import loader
from pipeline.config.args import LaunchParams, TrainArgs
from pipeline.core.errors import stage_main
from pipeline.pretrain.mlm import MlmParams, PretrainRun
from pipeline.pretrain.nsp import Objective
from pipeline.stages.pretrain import pretrain_stage


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
    pretrain_stage(objective, mlm, train, run, launch, args.run, args.base, args.corpus, args.out, args.metrics,
                   args.live)


if __name__ == "__main__":
    sys.exit(main())
