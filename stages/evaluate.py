"""Stage evaluate: task metrics, classification diagnostics, model facts and speed vs the dense baseline."""

import argparse
import sys
from pathlib import Path

import numpy as np

from pipeline import params
from pipeline.artifacts import load_model, load_tokenizer, write_json
from pipeline.diagnostics import classification_report
from pipeline.errors import stage_main
from pipeline.evaluate import flat_diagnostics, latency_inputs, size_facts, write_details, write_plot_data
from pipeline.facts import model_facts
from pipeline.runtime import setup
from pipeline.speed import runs_on_cuda, speed_facts
from pipeline.tasks import evaluate_splits, primary_metric, rows


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", required=True, help="task name in params.yaml tasks")
    p.add_argument("--baseline", type=Path, required=True, help="dense fine-tuned artifact timed alongside")
    p.add_argument("--details", type=Path, required=True, help="JSON of per-layer and per-class results")
    p.add_argument("--plots", type=Path, required=True, help="directory of DVC plot data")
    p.add_argument("model", type=Path, help="artifact to evaluate")
    p.add_argument("data", type=Path, help="task data directory")
    p.add_argument("out", type=Path, help="metrics JSON (flat scalars)")
    return p


def reads(args) -> list[str]:
    return [f"tasks.{args.task}", "evaluate"]


@stage_main("evaluate")
def main(argv=None):
    args = parser().parse_args(argv)
    task, cfg = params.load(*reads(args))
    setup(0)
    model, meta = load_model(args.model, task.type)
    baseline, tokenizer = load_model(args.baseline, task.type)[0], load_tokenizer(args.model)
    # Task metrics in fp32 on the GPU when there is one and the format runs there (dynamic int8: CPU only).
    device = "cuda" if runs_on_cuda(meta) else "cpu"
    scores, logit = evaluate_splits(model.to(device), task, args.data, tokenizer, cfg.batch_size, device)
    facts, layers = model_facts(args.model)
    diag, labels, preds = {}, None, None
    if logit is not None and logit.shape[1] > 1:  # no confusion matrix/ROC for regression
        labels = np.asarray([r["label"] for r in rows(task, args.data, "validation")])
        diag, preds = classification_report(logit, labels), logit.argmax(-1)
    speed = speed_facts(model, baseline, meta, lambda bs: latency_inputs(task, args.data, tokenizer, bs),
                        cfg.latency_batch_size, cfg.latency_warmup, cfg.latency_repeats, cfg.threads)
    result = {"task": args.task, "variant": args.model.name, "stage": meta["stage"], "format": meta["format"],
              "method": meta.get("method", meta["stage"]), "primary_metric": primary_metric(task),
              "eval_device": device, **scores,
              **flat_diagnostics(diag), **facts, **size_facts(args.model), **speed}
    write_plot_data(args.plots, layers, diag, labels, preds)
    write_details(args.details, facts, layers, diag, meta)
    write_json(args.out, result)


if __name__ == "__main__":
    sys.exit(main())
