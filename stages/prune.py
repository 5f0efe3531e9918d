"""Stage prune: prune a fine-tuned model with one registered method (magnitude, gradual, heads, ffn, layers, nm)."""

import argparse
import sys
from pathlib import Path

from pipeline import params
from pipeline.artifacts import atomic_dir, load_model, load_tokenizer, parents, save_model
from pipeline.errors import stage_main
from pipeline.features import batches, collate
from pipeline.prune import TRAINING, ZEROING, prune_
from pipeline.runtime import setup
from pipeline.tasks import hard_loss, logits, rows, train_features, trainer


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", required=True, help="task name in params.yaml tasks")
    p.add_argument("--method", required=True, help="pruning method (a prune.<method> section)")
    p.add_argument("source", type=Path, help="fine-tuned artifact")
    p.add_argument("data", type=Path, help="task data directory (importance estimation)")
    p.add_argument("out", type=Path, help="output artifact directory")
    return p


def reads(args) -> list[str]:
    return [f"tasks.{args.task}", f"prune.{args.method}"]


@stage_main("prune")
def main(argv=None):
    args = parser().parse_args(argv)
    task, cfg = params.load(*reads(args))
    setup(0)
    model, _ = load_model(args.source, task.type)
    tokenizer = load_tokenizer(args.source)
    feats = train_features(task, rows(task, args.data, "train"), tokenizer)
    data = list(batches(feats[:512], 32, lambda f: collate(f, tokenizer.pad_token_id)))
    train = None
    if args.method in TRAINING:
        device = setup(cfg.train.seed)
        train = trainer(task, args.data, tokenizer, cfg.train, device, f"prune {args.task} {args.method}")
    report = prune_(model, args.method, cfg, data, lambda m, b: hard_loss(task, logits(m, b), b), train=train)
    model.cpu()
    meta = {"stage": "prune", "head": task.type, "format": "dense", "method": args.method, "task": args.task,
            "parents": parents(args.source, args.data), "results": report,
            "params": params.as_dict({"task": task, args.method: cfg})}
    with atomic_dir(args.out) as tmp:
        save_model(tmp, model, args.source, meta, compact=args.method in ZEROING)


if __name__ == "__main__":
    sys.exit(main())
