"""Stage prune: prune a fine-tuned model with one registered method (``src/pipeline/prune/<method>.py``)."""

import argparse, json, sys  # noqa: E401  (one line: the stage sits at the 60-line cap)
from pathlib import Path

from pipeline import tasks
from pipeline.artifacts import load_model
from pipeline.config import loader
from pipeline.config.args import LaunchParams
from pipeline.core.errors import stage_main
from pipeline.core.files import parents
from pipeline.core.runtime import setup
from pipeline.data.tokenizer import load_tokenizer
from pipeline.prune import METHODS, EncodedOnce, PruneContext, check_method, prune_, write_pruned
from pipeline.prune.sweep import at_point
from pipeline.train.supervised import trainer
from pipeline.train.run_files import RunFiles


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", required=True, help="task name in params.yaml tasks")
    p.add_argument("--method", required=True, help="pruning method (a prune.<method> section)")
    p.add_argument("source", type=Path, help="fine-tuned artifact")
    p.add_argument("data", type=Path, help="task data directory (importance estimation)")
    p.add_argument("out", type=Path, help="output artifact directory")
    p.add_argument("--live", type=Path, help="dvclive directory for the training curves (training methods)")
    p.add_argument("--target", type=json.loads, help="a sweep point's value of the method's target (prune.sweep)")
    return p


def reads(args) -> dict[str, type]:
    return {f"tasks.{args.task}": tasks.TaskParams, f"prune.{args.method}": METHODS.get(args.method).params,
            "launch": LaunchParams}


@stage_main("prune")
def main(argv=None):
    args = parser().parse_args(argv)
    task_params, cfg, launch = loader.load(reads(args))
    task, method, device = tasks.get(task_params), METHODS.get(args.method), setup(0, launch)
    (cfg, sweep), files = at_point(method, cfg, args.target), RunFiles.beside(args.out, args.live)
    (model, _), tokenizer = load_model(args.source, task.head), load_tokenizer(args.source)
    task.check(args.task, {args.source: model}, tokenizer, args.data)
    check_method(model, method, cfg)  # before importance batches or training; the work runs on `device`
    context = PruneContext.for_task(task, task.rows(args.data, "train") if method.batches else [], tokenizer,
                                    method.examples(cfg), device=device)  # only the rows its batches need
    if method.trains:  # reseeded after loading: training starts from its own seed; the splits are encoded once
        context.train = trainer(EncodedOnce(task), args.data, tokenizer, cfg.train, setup(cfg.train.seed, launch),
                                f"prune {args.task} {args.method}", files)
    meta = {"stage": "prune", "head": task.head, "format": "dense", "method": args.method, "task": args.task,
            "parents": parents(args.source, args.data), "results": prune_(model, method, cfg, context),
            "params": loader.as_dict({"task": task_params, args.method: cfg}), **sweep}
    write_pruned(args.out, model, args.source, meta, compact=method.zeroing)
    files.done()


if __name__ == "__main__":
    sys.exit(main())
