"""Stage evaluate: task metrics, predictions, diagnostics, model facts, memory and speed vs the dense baseline."""

import argparse
import sys
from pathlib import Path

from pipeline import tasks
from pipeline.config import loader
from pipeline.core.errors import stage_main
from pipeline.core.runtime import setup
from pipeline.data.tokenizer import load_tokenizer
from pipeline.evaluate import EvaluateParams
from pipeline.evaluate.facts import model_facts
from pipeline.evaluate.lineage import lineage
from pipeline.evaluate.memory import start_memory
from pipeline.evaluate.outputs import OutputPaths, identity, write_outputs
from pipeline.evaluate.speed import latency_inputs, runs_on_cuda, speed_facts
from pipeline.evaluate.task_metrics import task_metrics
from pipeline.models.store import format_devices, load_model


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
    task = tasks.get(task_params)
    setup(0)
    (model, meta), baseline = load_model(args.model, task.head), load_model(args.baseline, task.head)[0]
    tokenizer = load_tokenizer(args.model)  # checked below with the task against both models and the data
    task.check(args.task, {args.model: model, args.baseline: baseline}, tokenizer, args.data, ("validation",))
    devices, inputs = format_devices(args.model, meta), lambda bs: latency_inputs(task, args.data, tokenizer, bs)
    batches = {"bs1": inputs(1), "large": inputs(cfg.latency_batch_size)} if cfg.memory else {}  # {}: no memory runs
    with start_memory(args.model, task.head, batches, cfg.threads, bool(batches) and runs_on_cuda(devices)) as memory:
        measured = task_metrics(task, model, args.data, tokenizer, cfg.batch_size, devices)
        facts = model_facts(args.model)
        origin = lineage(args.model, meta, args.data, args.baseline, loader.as_dict(cfg))
        footprint = memory.result()
    speed = speed_facts(model, baseline, devices, inputs, cfg.latency_batch_size, cfg.latency_warmup,
                        cfg.latency_repeats, cfg.threads)  # after the memory runs: nothing else runs meanwhile
    who = identity(args.task, args.model, meta, task.primary_metric, measured.device, task.glue_task)
    write_outputs(OutputPaths.from_args(args), args.model, who, origin, measured, facts, {**speed, **footprint}, meta)


if __name__ == "__main__":
    sys.exit(main())
