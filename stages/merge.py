"""Stage merge: merge the pretraining runs in weight space and measure held-out perplexity."""

import argparse
import sys
from pathlib import Path

from pipeline.config import loader
from pipeline.core.errors import stage_main
from pipeline.merge import METHODS
from pipeline.stages.merge import merge_stage
from pipeline.pretrain.mlm import MlmParams


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("models", type=Path, nargs="+", help="MLM artifacts to merge")
    p.add_argument("--base", type=Path, required=True, help="base artifact (task arithmetic)")
    p.add_argument("--corpus", type=Path, required=True, help="corpus data directory (perplexity)")
    p.add_argument("--out", type=Path, required=True, help="output artifact directory")
    p.add_argument("--metrics", type=Path, required=True, help="metrics JSON")
    return p


def reads(args) -> dict[str, type]:
    (method,) = loader.load({"merge.method": str})  # the method's own knobs are merge.<method>
    return {"merge.method": str, "merge.weights": list[float],
            f"merge.{method}": METHODS.get(method, "merge.method").params, "pretrain.mlm": MlmParams}


@stage_main("merge")
def main(argv=None):
    args = parser().parse_args(argv)
    method, weights, cfg, mlm = loader.load(reads(args))
    merge_stage(method, weights, cfg, mlm, args.models, args.base, args.corpus, args.out, args.metrics)


if __name__ == "__main__":
    sys.exit(main())
