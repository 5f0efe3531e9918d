"""Stage merge: merge the pretraining runs in weight space and measure held-out perplexity."""

import argparse
import sys
from pathlib import Path

from pipeline import params
from pipeline.artifacts import atomic_dir, load_model, load_tokenizer, parents, save_model, write_json
from pipeline.data.io import read_split
from pipeline.errors import stage_main
from pipeline.features import encode_text
from pipeline.merge import merge_states
from pipeline.mlm import perplexity
from pipeline.runtime import setup


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("models", type=Path, nargs="+", help="MLM artifacts to merge")
    p.add_argument("--base", type=Path, required=True, help="base artifact (task arithmetic)")
    p.add_argument("--corpus", type=Path, required=True, help="corpus data directory (perplexity)")
    p.add_argument("--out", type=Path, required=True, help="output artifact directory")
    p.add_argument("--metrics", type=Path, required=True, help="metrics JSON")
    return p


def reads(args) -> list[str]:
    return ["merge", "pretrain.mlm"]


@stage_main("merge")
def main(argv=None):
    args = parser().parse_args(argv)
    cfg, mlm = params.load(*reads(args))
    device = setup(0)
    models = [load_model(p, "mlm")[0] for p in args.models]
    base, _ = load_model(args.base, "mlm")
    merged_state = merge_states([m.state_dict() for m in models], [str(p) for p in args.models], cfg,
                                base.state_dict())
    tokenizer = load_tokenizer(args.base)
    feats = encode_text(read_split(args.corpus, "validation", "text"), tokenizer, mlm.max_length)
    ppl = {str(p): perplexity(m, feats, tokenizer, mlm.probability, device) for p, m in zip(args.models, models)}
    merged = models[0]  # measured above; now reused as the container of the merged weights
    merged.load_state_dict(merged_state)
    result = {"perplexity": perplexity(merged, feats, tokenizer, mlm.probability, device), "inputs": ppl}
    meta = {"stage": "merge", "head": "mlm", "format": "dense", "method": cfg.method,
            "parents": parents(args.base, *args.models), "params": params.as_dict(cfg), "results": result}
    with atomic_dir(args.out) as tmp:
        save_model(tmp, merged.cpu(), args.base, meta)
    write_json(args.metrics, result)


if __name__ == "__main__":
    sys.exit(main())
