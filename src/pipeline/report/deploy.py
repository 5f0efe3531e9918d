"""The deployment choice: per task and per timing device, the fastest variant within ``report.budget`` points of
the dense model, with its speed-up, size and the code that loads it.

Speed is the speed-up each evaluate stage measured interleaved against the dense baseline on that device
(``<device>_bs1_speedup`` and ``<device>_large_speedup``, :mod:`pipeline.evaluation.speed`). A variant is ranked by
the smaller of its two speed-ups (batch 1 and the large batch): the choice must be fast for one request and for
a batch alike. Variants whose speed-ups lie within each other's spread of per-round ratios (p10..p90,
:func:`pipeline.report.pareto.faster`) are equally fast: among them the choice is the one with the higher
metric, then the smaller weights, and the others are listed as ties, never ranked by noise.

A point is one hundredth of the metric's full scale (:data:`POINT`): 0.01 accuracy/F1 for classification
(metrics in [0, 1]), 1.0 F1/EM for QA (SQuAD's percentages).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.core.errors import PipelineError
from pipeline.report.pareto import faster, speedup_table
from pipeline.report.tables import BASELINE, measured, primary_metric

POINT = {"classification": 0.01, "qa": 1.0}
"""One point of the primary metric, by task type (``tasks.<name>.type``)."""
LABELS = ("bs1", "large")
"""The batch labels whose speed-ups rank a variant (:mod:`pipeline.evaluation.speed`)."""
AUTO = {"classification": "AutoModelForSequenceClassification", "qa": "AutoModelForQuestionAnswering"}
"""The transformers class that loads a dense artifact of each head."""


@dataclass
class DeployInputs:
    """What the choice needs besides the evaluations."""

    budget: float = 1.0
    """``report.budget``: points of the primary metric a variant may lose against the dense model."""
    points: dict[str, float] = field(default_factory=dict)
    """``{task: one point in the metric's unit}`` (:func:`points`)."""
    models: Path | None = None
    """The artifacts, ``<models>/<task>/<variant>/`` (how each loads is read from its files)."""


def points(task_types: dict[str, str]) -> dict[str, float]:
    """``{task: one point}`` from ``{task: tasks.<task>.type}``.

    Raises:
        PipelineError: a task type without a known metric scale, named.
    """
    unknown = {t: k for t, k in task_types.items() if k not in POINT}
    if unknown:
        task, kind = next(iter(unknown.items()))
        raise PipelineError(f"params.yaml: 'tasks.{task}.type' {kind!r} has no metric scale for report.budget "
                            f"(known: {', '.join(POINT)})")
    return {t: POINT[k] for t, k in task_types.items()}


def devices(variants: pd.DataFrame) -> list[str]:
    """The devices some variant was timed on (``<device>_<label>_speedup`` columns), sorted."""
    labels = "|".join(LABELS)
    columns = {c: m.group(1) for c in variants.columns if (m := re.fullmatch(rf"([a-z]+)_(?:{labels})_speedup", c))}
    return sorted({device for c, device in columns.items() if any(measured(v) for v in variants[c])})


def ranking(variants: pd.DataFrame, device: str) -> pd.DataFrame:
    """Each timed variant's ranking speed-up on ``device``: the smaller of its batch-1 and large-batch
    speed-ups, with that batch's spread (``speedup``, ``speedup_p10``, ``speedup_p90``, ``batch``), and both
    speed-ups (``bs1``, ``large``; NA where not timed). Variants timed at neither batch are left out."""
    tables = {label: speedup_table(variants, f"{device}_{label}_") for label in LABELS}
    rows = {}
    for name in variants.index:
        timed = {label: t.loc[name] for label, t in tables.items() if name in t.index}
        if timed:
            label = min(timed, key=lambda k: timed[k]["speedup"])
            rows[name] = {**timed[label].to_dict(), "batch": label,
                          **{k: (float(timed[k]["speedup"]) if k in timed else math.nan) for k in LABELS}}
    return pd.DataFrame.from_dict(rows, orient="index")


def choose(variants: pd.DataFrame, device: str, budget: float, point: float) -> dict | None:
    """The fastest variant on ``device`` within ``budget`` points of :data:`BASELINE`, or None.

    Args:
        variants: one task's flat metrics, a row per variant (:func:`pipeline.report.collect.collect`).
        device: a device of :func:`devices`.
        budget: points the metric may drop below the baseline's (``report.budget``).
        point: one point in the metric's unit (:data:`POINT`).

    Returns:
        ``{"device", "variant", "metric_name", "metric", "baseline_metric", "delta_points", "speedup_bs1",
        "speedup_large", "speedup", "speedup_p10", "speedup_p90", "size_mb", "size_ratio", "format", "ties"}``
        (``ties``: other variants within the budget whose ranking speed-up the chosen one does not beat beyond
        the spread), or None when the baseline was not evaluated or nothing within the budget was timed.
    """
    metric = primary_metric(variants)
    if BASELINE not in variants.index or not measured(variants.at[BASELINE, metric]):
        return None
    base = float(variants.at[BASELINE, metric])
    floor = base - budget * point - 1e-9 * max(1.0, abs(base))  # the float margin keeps "exactly 1 point" inside
    within = [n for n, v in variants[metric].items() if measured(v) and float(v) >= floor]
    speed = ranking(variants.loc[within], device)
    if speed.empty:
        return None
    best = speed["speedup"].idxmax()
    ties = [n for n in speed.index if not faster(speed.loc[best], speed.loc[n])]
    size = variants["size_bytes"]
    pick = sorted(ties, key=lambda n: (-float(variants.at[n, metric]), float(size[n]) if measured(size[n]) else
                                       math.inf, n))[0]
    row, s = variants.loc[pick], speed.loc[pick]
    return {"device": device, "variant": pick, "metric_name": metric, "metric": float(row[metric]),
            "baseline_metric": base, "delta_points": (float(row[metric]) - base) / point,
            "speedup_bs1": _number(s["bs1"]), "speedup_large": _number(s["large"]), "batch": s["batch"],
            "speedup": float(s["speedup"]), "speedup_p10": float(s["speedup_p10"]),
            "speedup_p90": float(s["speedup_p90"]),
            "size_mb": float(size[pick]) / 1e6 if measured(size[pick]) else None,
            "size_ratio": float(size[BASELINE] / size[pick]) if measured(size[pick]) and measured(size[BASELINE])
            else None, "format": str(row.get("format", "?")), "ties": sorted(t for t in ties if t != pick)}


def _number(value) -> float | None:
    return float(value) if measured(value) else None


def load_code(artifact: Path) -> tuple[str, str]:
    """How a user loads ``artifact``: ``(way, Python code)``, ``way`` one of ``onnxruntime`` (a ``model.onnx``
    graph), ``transformers`` (dense SafeTensors weights; ``trust_remote_code=True`` when the artifact carries its
    pruned modeling file) or ``pipeline`` (quantized or compactly stored weights: the project's loader).

    Raises:
        PipelineError: the artifact's ``pipeline.json`` is missing or unreadable.
    """
    try:
        meta = json.loads((artifact / "pipeline.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise PipelineError(f"{artifact / 'pipeline.json'}: cannot read it ({err})") from None
    where = artifact.as_posix()
    if (artifact / "model.onnx").is_file():
        return "onnxruntime", (
            "import onnxruntime as ort\nfrom transformers import AutoTokenizer\n\n"
            f'tokenizer = AutoTokenizer.from_pretrained("{where}")\n'
            f'session = ort.InferenceSession("{where}/model.onnx", providers=["CPUExecutionProvider"])\n'
            'batch = tokenizer(["an example"], return_tensors="np")\n'
            "logits = session.run(None, {i.name: batch[i.name] for i in session.get_inputs()})")
    if meta.get("format") == "dense" and meta.get("storage", "dense") == "dense" and meta.get("head") in AUTO:
        config = json.loads((artifact / "config.json").read_text())
        auto = AUTO[meta["head"]]
        remote = ", trust_remote_code=True" if auto in config.get("auto_map", {}) else ""
        return "transformers", (f"from transformers import {auto}, AutoTokenizer\n\n"
                                f'model = {auto}.from_pretrained("{where}"{remote})\n'
                                f'tokenizer = AutoTokenizer.from_pretrained("{where}")')
    return "pipeline", ("from pipeline.data.tokenizer import load_tokenizer\n"
                        "from pipeline.artifacts import load_model\n\n"
                        f'model, meta = load_model("{where}")  # {meta.get("format")} weights, rebuilt\n'
                        f'tokenizer = load_tokenizer("{where}")')


def choices(results: dict[str, pd.DataFrame], inputs: DeployInputs) -> dict[str, list[dict]]:
    """``{task: [choice per device]}`` (:func:`choose`, with ``loads`` and ``code`` from :func:`load_code` when
    the artifacts are known); a device with no choice is absent."""
    out = {}
    for task, variants in results.items():
        out[task] = []
        for device in devices(variants):
            pick = choose(variants, device, inputs.budget, inputs.points[task])
            if pick is not None and inputs.models is not None:
                pick["loads"], pick["code"] = load_code(inputs.models / task / pick["variant"])
            if pick is not None:
                out[task].append(pick)
    return out


def choice_markdown(picked: dict[str, list[dict]], budget: float, task: str | None = None) -> str:
    """A markdown section with the choice of each task (or of ``task``) and device, and how to load it."""
    lines = ["", "## Deployment choice", "",
             f"Per device, the fastest variant within {budget:g} point(s) of `{BASELINE}` (`report.budget`), ranked "
             "by the smaller of its batch-1 and large-batch speed-ups measured interleaved against the dense model; "
             "variants within each other's spread of per-round speed-ups (p10-p90) count as equally fast (the "
             "higher metric, then the smaller size wins).", ""]
    rows = [(t, c) for t, cs in picked.items() if task in (None, t) for c in cs]
    if not rows:
        return "\n".join([*lines, "No choice: the dense model or every variant's speed-up was not measured.", ""])
    for t, c in rows:
        size = f"{c['size_mb']:.3f} MB" if c["size_mb"] is not None else "size not measured"
        ratio = f" ({c['size_ratio']:.2f}x smaller)" if c["size_ratio"] is not None else ""
        speed = ", ".join(f"{c[f'speedup_{b}']:.2f}x at {'batch 1' if b == 'bs1' else 'the large batch'}"
                          for b in LABELS if c[f"speedup_{b}"] is not None)
        lines += [f"### {t} on {c['device']}: `{c['variant']}`", "",
                  f"- {c['metric_name']} {c['metric']:.4g} ({c['delta_points']:+.2f} points vs {BASELINE}'s "
                  f"{c['baseline_metric']:.4g})",
                  f"- speed-up {speed} (ranking batch spread p10-p90: {c['speedup_p10']:.2f}x-{c['speedup_p90']:.2f}x)",
                  f"- weights {size}{ratio}, format `{c['format']}`"]
        if c["ties"]:
            lines.append(f"- equally fast within the spread: {', '.join(f'`{n}`' for n in c['ties'])}")
        if "code" in c:
            lines += [f"- loads with {c['loads']}:", "", "```python", c["code"], "```"]
        lines.append("")
    return "\n".join(lines)
