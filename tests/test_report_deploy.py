"""The speed-up Pareto front (ties within the spread of per-round ratios) and the deployment choice within
``report.budget`` points of the dense model, with the code that loads it."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from pipeline.core.errors import PipelineError
from pipeline.report.cited import ReportParams
from pipeline.report.deploy import DeployInputs, choice_markdown, choices, choose, devices, load_code, points
from pipeline.report.pareto import pareto, speedup_front, speedup_table


def frame(rows: dict[str, dict]) -> pd.DataFrame:
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("variant").assign(primary_metric="accuracy")


def timed(acc, size, bs1, large, spread=0.05, device="cpu"):
    """One variant's row: accuracy, size and both speed-ups on ``device`` with a symmetric spread."""
    out = {"accuracy": acc, "size_bytes": size}
    for label, s in (("bs1", bs1), ("large", large)):
        out |= {f"{device}_{label}_speedup": s, f"{device}_{label}_speedup_p10": s - spread,
                f"{device}_{label}_speedup_p90": s + spread}
    return out


def test_identical_compute_within_the_spread_is_not_told_apart():
    """Two variants of the same compute: median speed-ups 1.20x and 1.30x but overlapping spreads."""
    speed = pd.DataFrame({"speedup": [1.2, 1.3, 2.0, 1.0], "speedup_p10": [1.05, 1.1, 1.8, 0.97],
                          "speedup_p90": [1.4, 1.5, 2.2, 1.03]}, index=["a", "b", "c", "dense"])
    same = pd.Series({"a": 0.85, "b": 0.85, "c": 0.80, "dense": 0.86})
    # a and b tie (neither is faster beyond the other's spread): both stay on the front; c is faster than both
    assert speedup_front(speed, same) == ["c", "b", "a", "dense"]
    # a better metric wins a tie in speed: b drops out behind a
    better = same.copy()
    better["a"] = 0.855
    assert speedup_front(speed, better) == ["c", "a", "dense"]
    # without a spread the faster median wins (the old absolute ranking) and b beats a
    points_only = speed.assign(speedup_p10=speed["speedup"], speedup_p90=speed["speedup"])
    assert speedup_front(points_only, same) == ["c", "b", "dense"]


def test_pareto_plots_speedup_not_latency():
    rows = {"finetune": {"accuracy": 0.86, "size_bytes": 4e6, "speedup": 1.0, "speedup_p10": 0.9,
                         "speedup_p90": 1.1, "latency_ms_p50": 45.0},
            # absolute latency from a quiet moment (28 ms) but no faster than the baseline when interleaved
            "distill-magnitude": {"accuracy": 0.86, "size_bytes": 4e6, "speedup": 1.02, "speedup_p10": 0.93,
                                  "speedup_p90": 1.12, "latency_ms_p50": 28.0},
            "unmeasured": {"accuracy": 0.5, "size_bytes": 1e6}}
    table, fronts = pareto(frame(rows))
    assert fronts["speedup"] == ["distill-magnitude", "finetune"]  # a tie: neither is faster than the other
    assert fronts["size"] == ["unmeasured", "finetune", "distill-magnitude"]
    assert math.isnan(table.at["unmeasured", "speedup"]) and table.at["unmeasured", "speedup_front"] == 0
    assert list(speedup_table(frame(rows)).index) == ["finetune", "distill-magnitude"]


def test_choice_is_the_fastest_within_the_budget():
    rows = {"finetune": timed(0.850, 4e6, 1.0, 1.0),
            "int8-too-lossy": timed(0.836, 1e6, 4.6, 3.0),          # 1.4 points down: out of a 1-point budget
            "onnx-heads": timed(0.846, 2e6, 2.6, 1.2),               # ranked by its batch-32 speed-up, 1.2x
            "heads-ffn-int8": timed(0.840, 1e6, 2.7, 2.5)}           # exactly 1 point down: inside
    pick = choose(frame(rows), "cpu", budget=1.0, point=0.01)
    assert pick["variant"] == "heads-ffn-int8" and pick["delta_points"] == pytest.approx(-1.0)
    assert (pick["speedup_bs1"], pick["speedup_large"], pick["batch"]) == (2.7, 2.5, "large")
    assert pick["size_ratio"] == 4.0 and pick["ties"] == []
    # a budget of 2 points lets the lossier, faster one in; a budget of 0 leaves only the dense model
    assert choose(frame(rows), "cpu", budget=2.0, point=0.01)["variant"] == "int8-too-lossy"
    assert choose(frame(rows), "cpu", budget=0.0, point=0.01)["variant"] == "finetune"


def test_ties_within_the_spread_go_to_the_better_metric_then_the_smaller_model():
    rows = {"finetune": timed(0.850, 4e6, 1.0, 1.0),
            "prune-magnitude": timed(0.845, 4e6, 1.9, 1.9, spread=0.3),
            "distill-magnitude": timed(0.848, 4e6, 2.1, 2.1, spread=0.3),   # faster median, same compute
            "small": timed(0.848, 2e6, 2.0, 2.0, spread=0.3)}
    pick = choose(frame(rows), "cpu", budget=1.0, point=0.01)
    assert pick["variant"] == "small" and pick["ties"] == ["distill-magnitude", "prune-magnitude"]


def test_qa_points_and_devices():
    rows = {"finetune": {"f1": 80.0, "size_bytes": 4e6, **timed(0, 4e6, 1.0, 1.0, device="cuda")},
            "heads": {"f1": 79.2, "size_bytes": 3e6, **timed(0, 3e6, 1.5, 1.6, device="cuda")}}
    variants = pd.DataFrame.from_dict(rows, orient="index").drop(columns="accuracy").assign(primary_metric="f1")
    assert devices(variants) == ["cuda"]
    assert choose(variants, "cuda", 1.0, points({"qa": "qa"})["qa"])["variant"] == "heads"  # 0.8 F1 points down
    assert choose(variants, "cuda", 1.0, 0.01)["variant"] == "finetune"  # read as fractions it would be 80 points
    with pytest.raises(PipelineError, match="'tasks.x.type' 'ner' has no metric scale"):
        points({"x": "ner"})
    assert choose(variants.drop(index="finetune"), "cuda", 1.0, 1.0) is None  # no dense model: no budget


def test_budget_is_validated():
    assert ReportParams().budget == 1.0
    with pytest.raises(ValueError, match="budget must be in"):
        ReportParams(budget=-1)


def artifact(root, name, meta, config=None, onnx=False):
    path = root / "models" / "cls" / name
    path.mkdir(parents=True)
    (path / "pipeline.json").write_text(json.dumps(meta))
    (path / "config.json").write_text(json.dumps(config or {}))
    if onnx:
        (path / "model.onnx").write_bytes(b"graph")
    return path


def test_load_code_names_the_way_an_artifact_loads(tmp_path):
    dense = {"stage": "distill", "head": "classification", "format": "dense"}
    way, code = load_code(artifact(tmp_path, "plain", dense))
    assert way == "transformers" and "AutoModelForSequenceClassification.from_pretrained(" in code
    assert "trust_remote_code" not in code
    pruned = artifact(tmp_path, "pruned", dense, {"auto_map": {"AutoModelForSequenceClassification": "m.P"}})
    assert "trust_remote_code=True" in load_code(pruned)[1]
    assert load_code(artifact(tmp_path, "q", {**dense, "format": "dynamic_int8"}))[0] == "pipeline"
    assert load_code(artifact(tmp_path, "compact", {**dense, "storage": "compact"}))[0] == "pipeline"
    way, code = load_code(artifact(tmp_path, "onnx_int8-x", {**dense, "format": "onnx_int8"}, onnx=True))
    assert way == "onnxruntime" and "model.onnx" in code and "InferenceSession" in code
    for snippet in (code, load_code(pruned)[1]):
        compile(snippet, "snippet", "exec")  # valid Python
    with pytest.raises(PipelineError, match="pipeline.json"):
        load_code(tmp_path)


def test_choices_and_markdown(tmp_path):
    rows = {"finetune": timed(0.85, 4e6, 1.0, 1.0), "q": timed(0.845, 1e6, 1.7, 1.6)}
    artifact(tmp_path, "finetune", {"head": "classification", "format": "dense"})
    artifact(tmp_path, "q", {"head": "classification", "format": "dynamic_int8"})
    picked = choices({"cls": frame(rows)}, DeployInputs(1.0, {"cls": 0.01}, tmp_path / "models"))
    (c,) = picked["cls"]
    assert (c["variant"], c["loads"]) == ("q", "pipeline")
    text = choice_markdown(picked, 1.0)
    assert "### cls on cpu: `q`" in text and "1.70x at batch 1, 1.60x at the large batch" in text
    assert "-0.50 points" in text and 'load_model("' in text
    json.dumps(picked, allow_nan=False)  # strict JSON
