"""Hand-made evaluation outputs for report tests: a pipeline's inputs (data, tokenizer, artifacts) as small
directories, and the evaluate stage's files for a variant with the lineage of those inputs."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.core.files import write_json
from pipeline.evaluation.lineage import lineage

# Keys the evaluate stage writes to the facts and speed files (pipeline.evaluation.facts / speed / memory);
# everything else of a hand-made row goes to the metrics file.
FACT_KEYS = {"size_bytes", "dense_fp32_bytes", "params", "nonzero_params", "sparsity", "heads_total",
             "pruned_sparsity", "quantization_zero_fraction", "prunable_params", "artifact_bytes"}
SPEED_PREFIXES = ("cpu_", "cuda_", "latency_", "speedup", "large_batch_size", "threads", "timing_", "device")


def make_inputs(root: Path, task: str, variants, run: str = "run-1") -> None:
    """``root/data/<task>``, ``root/data/tokenizer`` and ``root/models/<task>/<variant>`` (plus the baseline
    ``finetune``) as tiny directories whose content depends on ``run`` (another run: other hashes)."""
    (root / "data" / task).mkdir(parents=True, exist_ok=True)
    (root / "data" / task / "validation.jsonl").write_text(f'{{"run": "{run}", "task": "{task}"}}\n')
    (root / "data" / "tokenizer").mkdir(parents=True, exist_ok=True)
    (root / "data" / "tokenizer" / "vocab.txt").write_text(f"[PAD]\n[UNK]\n{run}\n")
    for variant in {"finetune", *variants}:
        model = root / "models" / task / variant
        model.mkdir(parents=True, exist_ok=True)
        (model / "model.safetensors").write_text(f"{run} {task} {variant}")
        head = "qa" if task == "qa" else "classification"  # what the deployment choice reads to say how it loads
        (model / "pipeline.json").write_text(json.dumps({"stage": variant.split("-")[0], "head": head,
                                                         "format": "dense"}))
        (model / "config.json").write_text("{}")
        (model / "vocab.txt").write_text(f"[PAD]\n[UNK]\n{run}\n")


def write_evaluation(root: Path, task: str, variant: str, row: dict, details: dict | None = None,
                     split: bool = True) -> list[dict]:
    """The evaluate stage's eval/facts/speed (and details) files of one variant under ``root/metrics``, with the
    lineage of the current inputs under ``root`` (:func:`make_inputs` first). ``row``'s facts and speed keys
    go to their files, the rest to the metrics file (everything, without ``split``). Returns the lineage."""
    model = root / "models" / task / variant
    origin = lineage(model, {"stage": variant.split("-")[0]}, root / "data" / task, root / "models" / task / "finetune",
                     {"batch_size": 64})
    head = {"task": task, "variant": variant, "lineage": origin}
    facts = {k: v for k, v in row.items() if split and k in FACT_KEYS}
    speed = {k: v for k, v in row.items() if split and k.startswith(SPEED_PREFIXES)}
    rest = {k: v for k, v in row.items() if k not in facts and k not in speed}
    for kind, content in (("eval", rest), ("facts", facts), ("speed", speed)):
        write_json(root / "metrics" / kind / task / f"{variant}.json", {**head, **content})
    if details is not None:
        write_json(root / "metrics" / "details" / task / f"{variant}.json", {**head, **details})
    return origin


def report_argv(root: Path, variants) -> list[str]:
    """The report stage's arguments for the inputs under ``root`` (its tasks are ``params.yaml``'s)."""
    return [str(root / "metrics"), str(root / "reports"), "--details", str(root / "metrics" / "details"),
            "--train", str(root / "metrics" / "train"), "--prepare", str(root / "metrics" / "prepare"),
            "--data", str(root / "data"), "--models", str(root / "models"), "--variants", *variants]


def read(path: Path) -> dict:
    return json.loads(path.read_text())
