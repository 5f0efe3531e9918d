"""Stage finetune: fine-tune the merged encoder on one task (classification or extractive QA)."""

import argparse
import sys
from pathlib import Path

from pipeline import tasks
from pipeline.artifacts import load_model
from pipeline.config import loader
from pipeline.config.args import LaunchParams, TrainArgs
from pipeline.core.errors import stage_main
from pipeline.core.files import parents
from pipeline.core.runtime import setup
from pipeline.data.labels import name_labels_
from pipeline.data.tokenizer import load_tokenizer
from pipeline.models.build import with_head
from pipeline.models.store import write_artifact
from pipeline.train.run_files import RunFiles
from pipeline.train.supervised import train_task


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", required=True, help="task name in params.yaml tasks")
    p.add_argument("source", type=Path, help="pretrained (merged) MLM artifact")
    p.add_argument("data", type=Path, help="task data directory")
    p.add_argument("out", type=Path, help="output artifact directory")
    p.add_argument("--live", type=Path, help="dvclive directory for the training curves")
    return p


def reads(args) -> dict[str, type]:
    return {f"tasks.{args.task}": tasks.TaskParams, f"finetune.{args.task}": TrainArgs, "launch": LaunchParams}


@stage_main("finetune")
def main(argv=None):
    args = parser().parse_args(argv)
    task_params, train, launch = loader.load(reads(args))
    task = tasks.get(task_params)
    device = setup(train.seed, launch)
    files = RunFiles.beside(args.out, args.live)
    encoder, _ = load_model(args.source, "mlm")
    model, tokenizer = with_head(encoder, task.head, task.num_labels, train.seed), load_tokenizer(args.source)
    name_labels_(model.config, args.data, task_params)  # class names into config.json
    task.check(args.task, {args.source: model}, tokenizer, args.data)  # before any training
    history, scores = train_task(model, task, args.data, tokenizer, train, device, f"finetune {args.task}",
                                 files=files)
    meta = {"stage": "finetune", "head": task.head, "format": "dense", "method": "full", "task": args.task,
            "parents": parents(args.source, args.data), "history": history, "results": scores,
            "params": loader.as_dict({"task": task_params, "train": train})}
    write_artifact(args.out, model, args.source, meta)
    files.done()


if __name__ == "__main__":
    sys.exit(main())
