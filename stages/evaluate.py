"""Stage evaluate: task metrics, predictions, diagnostics, model facts, memory and speed vs the dense baseline."""

import argparse
import sys
from pathlib import Path

from pipeline import tasks
from pipeline.artifacts import load_model
from pipeline.config import loader
from pipeline.core.errors import stage_main
from pipeline.core.runtime import setup
from pipeline.data.tokenizer import load_tokenizer
from pipeline.evaluation import EvaluateParams
from pipeline.evaluation.facts import model_facts
from pipeline.evaluation.kernel import fast_model, timed
from pipeline.evaluation.lineage import lineage
from pipeline.evaluation.memory import device_memory, start_memory
from pipeline.evaluation.outputs import OutputPaths, identity, write_outputs
from pipeline.evaluation.speed import latency_inputs
from pipeline.evaluation.scoring import task_metrics


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", required=True, help="task name in params.yaml tasks")
    p.add_argument("--baseline", type=Path, required=True, help="dense fine-tuned artifact timed alongside")
    OutputPaths.add_arguments(p)
    p.add_argument("model", type=Path, help="artifact to evaluate")
    p.add_argument("data", type=Path, help="task data directory")
    p.add_argument("out", type=Path, help="metrics JSON (identity and task metrics)")
    return p


def reads(args) -> dict[str, type]:
    return {f"tasks.{args.task}": tasks.TaskParams, "evaluate": EvaluateParams}


@stage_main("evaluate")
def main(argv=None):
    args = parser().parse_args(argv)
    task_params, cfg = loader.load(reads(args))
    task, device = tasks.get(task_params), setup(0)
    (model, meta), baseline = load_model(args.model, task.head), load_model(args.baseline, task.head)[0]
    tokenizer = load_tokenizer(args.model)  # checked below with the task against both models and the data
    task.check(args.task, {args.model: model, args.baseline: baseline}, tokenizer, args.data, ("validation",))
    inputs = lambda bs: latency_inputs(task, args.data, tokenizer, bs)  # noqa: E731
    plan, model, kernel = fast_model(model, args.model, meta, device, lambda: inputs(1))  # as its kernel runs it
    batches = {"bs1": inputs(1), "large": inputs(cfg.latency_batch_size)} if cfg.memory else {}  # {}: no CPU RSS runs
    with start_memory(args.model, task.head, batches, cfg.threads) as memory:
        measured = task_metrics(task, model, args.data, tokenizer, cfg.batch_size, plan.where)
        facts = model_facts(args.model)
        origin = lineage(args.model, meta, args.data, args.baseline, loader.as_dict(cfg))
        footprint = memory.result() | device_memory(model, inputs(cfg.latency_batch_size), plan.where)  # variant alone
    speed = {"device": str(device), **kernel, **timed(model, baseline, plan, inputs, cfg)}  # after the memory runs
    who = identity(args.task, args.model, meta, task.primary_metric, measured.device, task.glue_task)
    write_outputs(OutputPaths.from_args(args), args.model, who, origin, measured, facts, {**speed, **footprint}, meta)


if __name__ == "__main__":
    sys.exit(main())
