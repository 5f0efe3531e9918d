"""Stage teacher: train a larger model on one task, to serve as the distillation teacher."""

import argparse
import sys
from pathlib import Path

from pipeline import params
from pipeline.artifacts import atomic_dir, load_tokenizer, parents, save_model
from pipeline.errors import stage_main
from pipeline.models import init_model
from pipeline.runtime import is_main, setup
from pipeline.tasks import train_task
from pipeline.train import RunFiles


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", required=True, help="task name in params.yaml tasks")
    p.add_argument("tokenizer", type=Path, help="tokenizer directory from prepare")
    p.add_argument("data", type=Path, help="task data directory")
    p.add_argument("out", type=Path, help="output artifact directory")
    p.add_argument("--live", type=Path, help="dvclive directory for the training curves")
    return p


def reads(args) -> list[str]:
    return [f"tasks.{args.task}", f"teacher.{args.task}", "launch"]


@stage_main("teacher")
def main(argv=None):
    args = parser().parse_args(argv)
    task, cfg, launch = params.load(*reads(args))
    device = setup(cfg.train.seed, launch)
    files = RunFiles.beside(args.out, args.live)
    tokenizer = load_tokenizer(args.tokenizer)
    model = init_model(cfg.arch, task.type, len(tokenizer), tokenizer.pad_token_id, task.num_labels)
    history, scores = train_task(model, task, args.data, tokenizer, cfg.train, device, f"teacher {args.task}",
                                 files=files)
    meta = {"stage": "teacher", "head": task.type, "format": "dense", "method": cfg.arch.base, "task": args.task,
            "parents": parents(args.tokenizer, args.data), "history": history, "results": scores,
            "params": params.as_dict({"task": task, "teacher": cfg})}
    if is_main():
        with atomic_dir(args.out) as tmp:
            save_model(tmp, model.cpu(), args.tokenizer, meta)
    files.done()


if __name__ == "__main__":
    sys.exit(main())
