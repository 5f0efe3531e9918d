"""Stage evaluate: task metrics, size, parameters, sparsity and CPU latency of one model variant."""

import argparse
import sys
from pathlib import Path

from pipeline import params
from pipeline.artifacts import load_model, load_tokenizer, write_json
from pipeline.errors import stage_main
from pipeline.evaluate import cpu_latency, latency_inputs, size_facts, stored_parameters
from pipeline.runtime import setup
from pipeline.tasks import evaluate_splits, primary_metric


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", required=True, help="task name in params.yaml tasks")
    p.add_argument("model", type=Path, help="artifact to evaluate")
    p.add_argument("data", type=Path, help="task data directory")
    p.add_argument("out", type=Path, help="metrics JSON")
    return p


def reads(args) -> list[str]:
    return [f"tasks.{args.task}", "evaluate"]


@stage_main("evaluate")
def main(argv=None):
    args = parser().parse_args(argv)
    task, cfg = params.load(*reads(args))
    setup(0)
    model, meta = load_model(args.model, task.type)
    tokenizer = load_tokenizer(args.model)
    # Quantized (dynamic int8) kernels are CPU-only, so every variant is scored on CPU alike.
    scores = evaluate_splits(model, task, args.data, tokenizer, cfg.batch_size, "cpu")
    total, nonzero = stored_parameters(args.model)
    result = {"task": args.task, "variant": args.model.name, "stage": meta["stage"], "format": meta["format"],
              "primary_metric": primary_metric(task), **scores, **size_facts(args.model),
              "params": total, "nonzero_params": nonzero, "sparsity": 1 - nonzero / total,
              **cpu_latency(model, latency_inputs(task, args.data, tokenizer, cfg.latency_batch_size), cfg)}
    write_json(args.out, result)


if __name__ == "__main__":
    sys.exit(main())
