"""Stage evaluate: task metrics, classification diagnostics, model facts and speed vs the dense baseline."""

import argparse
import sys
from pathlib import Path

from pipeline import tasks
from pipeline.config import loader
from pipeline.core.errors import stage_main
from pipeline.core.files import write_json
from pipeline.core.runtime import setup
from pipeline.data.tokenizer import load_tokenizer
from pipeline.evaluate import EvaluateParams
from pipeline.evaluate.facts import model_facts
from pipeline.evaluate.outputs import flat_diagnostics, size_facts, write_details
from pipeline.evaluate.speed import latency_inputs, speed_facts
from pipeline.evaluate.task_metrics import task_metrics
from pipeline.models.store import format_devices, load_model


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", required=True, help="task name in params.yaml tasks")
    p.add_argument("--baseline", type=Path, required=True, help="dense fine-tuned artifact timed alongside")
    p.add_argument("--details", type=Path, required=True,
                   help="JSON of per-layer and per-class results (the report's plot data is made from it)")
    p.add_argument("model", type=Path, help="artifact to evaluate")
    p.add_argument("data", type=Path, help="task data directory")
    p.add_argument("out", type=Path, help="metrics JSON (flat scalars)")
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
    tokenizer, devices = load_tokenizer(args.model), format_devices(args.model, meta)
    task.check(args.task, {args.model: model, args.baseline: baseline}, tokenizer, args.data, ("validation",))
    measured = task_metrics(task, model, args.data, tokenizer, cfg.batch_size, devices)
    facts, layers = model_facts(args.model)
    speed = speed_facts(model, baseline, devices, lambda bs: latency_inputs(task, args.data, tokenizer, bs),
                        cfg.latency_batch_size, cfg.latency_warmup, cfg.latency_repeats, cfg.threads)
    result = {"task": args.task, "variant": args.model.name, "stage": meta["stage"], "format": meta["format"],
              "method": meta.get("method", meta["stage"]), "primary_metric": task.primary_metric,
              "eval_device": measured.device, **measured.scores, **flat_diagnostics(measured.diagnostics), **facts,
              **size_facts(args.model), **speed}
    result["glue"] = task.glue_task  # the GLUE task these metrics score ("" for none): rows of the report's GLUE table
    write_details(args.details, facts, layers, measured.diagnostics, meta)
    write_json(args.out, result)


if __name__ == "__main__":
    sys.exit(main())
