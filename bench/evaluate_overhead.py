"""Seconds an evaluate stage spends outside its validation forward passes, at BERT-base shapes.

Builds, offline: a BERT-base classifier (random init from a ``BertConfig``, 110M parameters) saved twice as
a variant and its ``finetune`` baseline, a 30,522-word WordPiece vocabulary, and 872 validation rows like
SST-2 dev (sentences of 3-55 words, ``max_length`` 128); then runs ``stages/evaluate.py`` in this process
with the shipped ``params.yaml`` (``evaluate.cpu_timing: false``, ``memory: false``) and times its phases:
model loading, the validation pass (and, inside it, the model's forward calls), facts, lineage, the timing
and the writing. Prints one JSON line per phase and a summary line with ``outside_validation_forward_s``
(wall minus the validation pass's forward calls) and ``timing_calls``.

On a CPU-only machine the run's device is the CPU, so the timing runs there (``evaluate.threads`` threads,
at most ``latency_budget_s`` per batch size plus the calls that were already under way); on a GPU server it
runs on the GPU. ``--small`` is a seconds-long smoke run (tiny model, 16 rows).

Usage: ``OMP_NUM_THREADS=1 python bench/evaluate_overhead.py [--small] [--budget S] [--threads N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import torch
import yaml
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

from common import ROOT, emit

PHASES = ("load_model", "task_metrics", "model_facts", "lineage", "fast_model", "timed", "write_outputs")


def build_inputs(root: Path, small: bool, rows: int) -> tuple[Path, Path, Path]:
    """A vocabulary, SST-2-like validation rows and two saved artifacts under ``root``."""
    from pipeline.core.files import atomic_dir
    from pipeline.models.store import save_model

    words = [f"w{i}" for i in range(200 if small else 30522 - 5)]
    (root / "tok").mkdir()
    (root / "tok" / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizerFast(vocab=str(root / "tok" / "vocab.txt")).save_pretrained(root / "tok")
    rng = random.Random(0)
    data = root / "data" / "sst2"
    data.mkdir(parents=True)
    lines = [json.dumps({"sentence": " ".join(rng.choices(words, k=rng.randint(3, 55))), "label": i % 2, "idx": i})
             for i in range(rows)]
    (data / "validation.jsonl").write_text("\n".join(lines) + "\n")
    sizes = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64) if small else {}
    config = BertConfig(vocab_size=len(words) + 5, num_labels=2, **sizes)
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).eval()
    paths = []
    for name in ("finetune", "variant"):
        with atomic_dir(root / "models" / "sst2" / name) as tmp:
            save_model(tmp, model, root / "tok", {"stage": "finetune", "head": "classification", "format": "dense",
                                                  "task": "sst2"})
        paths.append(root / "models" / "sst2" / name)
    return paths[0], paths[1], data


def timed(fn, bucket: dict, key: str):
    """``fn`` that adds its wall seconds to ``bucket[key]``."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            bucket[key] = bucket.get(key, 0.0) + time.perf_counter() - start
    return wrapper


def run_stage(root: Path, baseline: Path, variant: Path, data: Path) -> tuple[float, dict]:
    """Run the evaluate stage in this process with its phases and the validation forward calls timed."""
    from pipeline.tasks.base import Task

    spec = importlib.util.spec_from_file_location("evaluate_script", ROOT / "stages" / "evaluate.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    stage = importlib.import_module("pipeline.stages.evaluate")  # the stage's logic, which calls the phases
    seconds: dict[str, float] = {}
    for name in PHASES:
        setattr(stage, name, timed(getattr(stage, name), seconds, name))
    in_validation = {"on": False}
    logits = Task.logits

    def counted_logits(model, inputs):  # the validation pass's forward calls only (not the timing's)
        if not in_validation["on"]:
            return logits(model, inputs)
        return timed(logits, seconds, "validation_forward")(model, inputs)

    metrics = stage.task_metrics

    def validation(*args, **kwargs):
        in_validation["on"] = True
        try:
            return metrics(*args, **kwargs)
        finally:
            in_validation["on"] = False

    stage.task_metrics = validation
    out = root / "metrics"
    argv = ["--task", "sst2", "--baseline", str(baseline), "--facts", str(out / "facts.json"), "--speed",
            str(out / "speed.json"), "--details", str(out / "details.json"), "--predictions", str(out / "pred"),
            str(variant), str(data), str(out / "eval.json")]
    Task.logits = staticmethod(counted_logits)
    start = time.perf_counter()
    try:
        code = script.main(argv)
    finally:
        Task.logits = staticmethod(logits)
    if code:
        raise SystemExit(f"evaluate stage failed with exit code {code}")
    return time.perf_counter() - start, seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="tiny model and 16 rows: a smoke run")
    p.add_argument("--budget", type=float, default=None, help="evaluate.latency_budget_s (default: params.yaml's)")
    p.add_argument("--threads", type=int, default=None, help="evaluate.threads (default: params.yaml's)")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="evaluate-overhead-"))
    cwd = os.getcwd()
    try:
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        params["tasks"]["sst2"] = {"type": "classification", "max_length": 128, "num_labels": 2, "glue": "sst2"}
        params["evaluate"].update(cpu_timing=False, memory=False)
        params["evaluate"].update({k: v for k, v in (("latency_budget_s", args.budget), ("threads", args.threads))
                                   if v is not None})
        (root / "params.yaml").write_text(yaml.safe_dump(params))
        baseline, variant, data = build_inputs(root, args.small, 16 if args.small else 872)
        os.chdir(root)
        wall, seconds = run_stage(root, baseline, variant, data)
        speed = json.loads((root / "metrics" / "speed.json").read_text())
    finally:
        os.chdir(cwd)
        shutil.rmtree(root, ignore_errors=True)
    emit_results(args, wall, seconds, speed, params["evaluate"])


def emit_results(args, wall: float, seconds: dict, speed: dict, cfg: dict) -> None:
    base = {"bench": "evaluate_overhead", "model": "tiny" if args.small else "bert-base", "rows": 16 if args.small
            else 872, "max_length": 128, "torch_threads": torch.get_num_threads(),
            "loadavg_1m": os.getloadavg()[0]}
    for name in (*PHASES, "validation_forward"):
        emit({**base, "phase": name, "seconds": round(seconds.get(name, 0.0), 3)})
    dev = speed["timing_device"]
    emit({**base, "phase": "summary", "wall_s": round(wall, 3),
          "validation_forward_s": round(seconds.get("validation_forward", 0.0), 3),
          "outside_validation_forward_s": round(wall - seconds.get("validation_forward", 0.0), 3),
          "timing_s": round(seconds.get("timed", 0.0), 3), "timing_device": dev,
          "timing_calls": {label: speed[f"{dev}_{label}_calls"] for label in ("bs1", "large")},
          "latency_budget_s": cfg["latency_budget_s"], "threads": cfg["threads"], "cpu_timing": cfg["cpu_timing"],
          "memory": cfg["memory"], "device": speed["device"]})


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        main()
