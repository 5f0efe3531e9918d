"""Stage prune: prune a fine-tuned model with one registered method (magnitude, gradual, heads, ffn, layers, nm)."""

import argparse
import sys
from pathlib import Path

from pipeline import params
from pipeline.artifacts import atomic_dir, load_model, load_tokenizer, parents, save_model, write_json
from pipeline.errors import stage_main
from pipeline.features import batches, collate
from pipeline.prune import TRAINING, ZEROING, prune_
from pipeline.runtime import is_main, setup
from pipeline.tasks import hard_loss, logits, rows, train_features, trainer
from pipeline.train import RunFiles


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", required=True, help="task name in params.yaml tasks")
    p.add_argument("--method", required=True, help="pruning method (a prune.<method> section)")
    p.add_argument("source", type=Path, help="fine-tuned artifact")
    p.add_argument("data", type=Path, help="task data directory (importance estimation)")
    p.add_argument("out", type=Path, help="output artifact directory")
    p.add_argument("--live", type=Path, help="dvclive directory for the training curves (training methods)")
    return p


def reads(args) -> list[str]:
    return [f"tasks.{args.task}", f"prune.{args.method}", "launch"]


@stage_main("prune")
def main(argv=None):
    args = parser().parse_args(argv)
    task, cfg, launch = params.load(*reads(args))
    setup(0, launch)
    files = RunFiles.beside(args.out, args.live)
    model, _ = load_model(args.source, task.type)
    tokenizer = load_tokenizer(args.source)
    feats = train_features(task, rows(task, args.data, "train"), tokenizer)
    data = list(batches(feats[:512], 32, lambda f: collate(f, tokenizer.pad_token_id)))
    train = None
    if args.method in TRAINING:
        device = setup(cfg.train.seed, launch)
        train = trainer(task, args.data, tokenizer, cfg.train, device, f"prune {args.task} {args.method}", files)
    elif args.live and is_main():  # no training: an empty list of step records (a valid, empty plot)
        write_json(args.live / "steps.json", [])
    report = prune_(model, args.method, cfg, data, lambda m, b: hard_loss(task, logits(m, b), b), train=train)
    meta = {"stage": "prune", "head": task.type, "format": "dense", "method": args.method, "task": args.task,
            "parents": parents(args.source, args.data), "results": report,
            "params": params.as_dict({"task": task, args.method: cfg})}
    if is_main():
        with atomic_dir(args.out) as tmp:
            save_model(tmp, model.cpu(), args.source, meta, compact=args.method in ZEROING)
    files.done()


if __name__ == "__main__":
    sys.exit(main())
