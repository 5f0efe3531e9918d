"""Stage merge: merge the pretraining runs in weight space and measure held-out perplexity."""

import argparse
import sys
from pathlib import Path

from pipeline.artifacts import load_model
from pipeline.config import loader
from pipeline.core.errors import stage_main
from pipeline.core.files import parents, write_json
from pipeline.core.runtime import setup
from pipeline.data.features import encode_text
from pipeline.data.io import read_split
from pipeline.data.tokenizer import load_tokenizer
from pipeline.merge import METHODS, merge_states
from pipeline.models.store import write_artifact
from pipeline.pretrain.mlm import MlmParams, check_mlm, perplexity


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
    device = setup(0)
    models = [load_model(p, "mlm")[0] for p in args.models]
    base, _ = load_model(args.base, "mlm")
    tokenizer = load_tokenizer(args.base)
    check_mlm(mlm, base, tokenizer, str(args.base))  # perplexity runs at mlm.max_length
    merged_state = merge_states([m.state_dict() for m in models], [str(p) for p in args.models],
                                METHODS.get(method), cfg, weights, base.state_dict())
    feats = encode_text(read_split(args.corpus, "validation", "text"), tokenizer, mlm.max_length)
    ppl = {str(p): perplexity(m, feats, tokenizer, mlm.probability, device) for p, m in zip(args.models, models)}
    merged = models[0]  # measured above; now reused as the container of the merged weights
    merged.load_state_dict(merged_state)
    result = {"perplexity": perplexity(merged, feats, tokenizer, mlm.probability, device), "inputs": ppl}
    meta = {"stage": "merge", "head": "mlm", "format": "dense", "method": method,
            "parents": parents(args.base, *args.models), "results": result,
            "params": loader.as_dict({"weights": weights, method: cfg})}
    write_artifact(args.out, merged, args.base, meta)
    write_json(args.metrics, result)


if __name__ == "__main__":
    sys.exit(main())
