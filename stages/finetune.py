"""Stage finetune: fine-tune the merged encoder on one task (classification or extractive QA)."""

import argparse
import sys
from pathlib import Path

from pipeline import params
from pipeline.artifacts import atomic_dir, load_model, load_tokenizer, parents, save_model
from pipeline.errors import stage_main
from pipeline.models import with_head
from pipeline.runtime import is_main, setup
from pipeline.tasks import train_task
from pipeline.train import RunFiles


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", required=True, help="task name in params.yaml tasks")
    p.add_argument("source", type=Path, help="pretrained (merged) MLM artifact")
    p.add_argument("data", type=Path, help="task data directory")
    p.add_argument("out", type=Path, help="output artifact directory")
    p.add_argument("--live", type=Path, help="dvclive directory for the training curves")
    return p


def reads(args) -> list[str]:
    return [f"tasks.{args.task}", f"finetune.{args.task}", "launch"]


@stage_main("finetune")
def main(argv=None):
    args = parser().parse_args(argv)
    task, train, launch = params.load(*reads(args))
    device = setup(train.seed, launch)
    files = RunFiles.beside(args.out, args.live)
    encoder, _ = load_model(args.source, "mlm")
    model = with_head(encoder, task.type, task.num_labels, train.seed)
    tokenizer = load_tokenizer(args.source)
    history, scores = train_task(model, task, args.data, tokenizer, train, device, f"finetune {args.task}",
                                 files=files)
    meta = {"stage": "finetune", "head": task.type, "format": "dense", "method": "full", "task": args.task,
            "parents": parents(args.source, args.data), "history": history, "results": scores,
            "params": params.as_dict({"task": task, "train": train})}
    if is_main():
        with atomic_dir(args.out) as tmp:
            save_model(tmp, model.cpu(), args.source, meta)
    files.done()


if __name__ == "__main__":
    sys.exit(main())
