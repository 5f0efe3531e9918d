"""The sweep table and plot: the metric by remaining encoder weights, per method, with and without distillation,
from hand-made metrics (the numbers are chosen so every fraction is exact)."""

from __future__ import annotations

import csv

import pytest
from PIL import Image

from evaluation_files import make_inputs, report_argv, write_evaluation
from pipeline.report.collect import Pipeline, collect
from pipeline.report.sweeps import sweep_frame, sweep_markdown
from test_stage_errors import run_stage

# Encoder counts (attention, FFN) stored / non-zero; the dense baseline has 1000 + 3000 encoder parameters.
BASE = dict(size_bytes=4_000_000, params=5_000, nonzero_params=5_000, latency_ms_p50=10.0, speedup=1.0,
            params_embeddings=1_000, nonzero_embeddings=1_000)
VARIANTS = {  # name: (accuracy, params_attention, nonzero_attention, params_ffn, nonzero_ffn)
    "finetune": (0.90, 1000, 1000, 3000, 3000),
    "teacher": (0.95, 2000, 2000, 6000, 6000),
    "prune-magnitude": (0.85, 1000, 400, 3000, 1200),          # 40% remain
    "prune-magnitude-0.9": (0.60, 1000, 100, 3000, 300),       # 10%
    "prune-magnitude-0.3": (0.89, 1000, 700, 3000, 2100),      # 70%
    "distill-magnitude": (0.88, 1000, 400, 3000, 1200),
    "distill-magnitude-0.9": (0.70, 1000, 100, 3000, 300),
    "prune-heads": (0.87, 500, 500, 3000, 3000),               # structural: 3500 / 4000 = 87.5%
    "distill-heads-1": (0.80, 250, 250, 3000, 3000),           # 81.25%
    "quantize-dynamic_int8-distill-heads": (0.86, 500, 500, 3000, 3000),    # no pruning method: not a point
}


def write_metrics(root, variants=VARIANTS, drop=()):
    """The evaluate stage's files of ``variants`` (with the lineage of hand-made inputs), less the keys ``drop``."""
    make_inputs(root, "cls", list(variants))
    for name, (acc, pa, na, pf, nf) in variants.items():
        row = {"primary_metric": "accuracy", "accuracy": acc, "params_attention": pa, "nonzero_attention": na,
               "params_ffn": pf, "nonzero_ffn": nf, **BASE}
        write_evaluation(root, "cls", name, {k: v for k, v in row.items() if (name, k) not in drop}, details={})
    for d in ("details", "train", "prepare"):
        (root / "metrics" / d).mkdir(parents=True, exist_ok=True)


def frame(root, variants=VARIANTS):
    pipeline = Pipeline(["cls"], list(variants), root / "data", root / "models")
    return sweep_frame(collect(root / "metrics", root / "metrics" / "details", pipeline).results["cls"])


def test_table_on_hand_made_metrics(tmp_path):
    write_metrics(tmp_path)
    table = frame(tmp_path)
    rows = [(r.variant, r.method, r.distilled, r.point, r.remaining_weights, r.accuracy) for r in table.itertuples()]
    assert rows == [
        ("finetune", "finetune", False, "", 1.0, 0.90),
        ("prune-heads", "heads", False, "", 0.875, 0.87),
        ("distill-heads-1", "heads", True, "1", 0.8125, 0.80),
        ("prune-magnitude-0.3", "magnitude", False, "0.3", 0.7, 0.89),
        ("prune-magnitude", "magnitude", False, "", 0.4, 0.85),
        ("prune-magnitude-0.9", "magnitude", False, "0.9", 0.1, 0.60),
        ("distill-magnitude", "magnitude", True, "", 0.4, 0.88),
        ("distill-magnitude-0.9", "magnitude", True, "0.9", 0.1, 0.70),
    ]
    text = sweep_markdown("cls", table)
    assert "| prune-magnitude-0.9 | magnitude | False | 0.9 | 10.0% | 0.6 |" in text
    assert "| prune-heads | heads | False |  | 87.5% | 0.87 |" in text


def test_no_baseline_or_no_counts_gives_no_points(tmp_path):
    variants = {k: v for k, v in VARIANTS.items() if k != "finetune"}
    write_metrics(tmp_path, variants)
    assert frame(tmp_path, variants).empty


def test_a_variant_without_encoder_counts_has_no_point(tmp_path):
    variants = {k: VARIANTS[k] for k in ("finetune", "prune-magnitude")}
    write_metrics(tmp_path, variants, drop={("prune-magnitude", "nonzero_ffn")})
    assert list(frame(tmp_path, variants)["variant"]) == ["finetune"]


@pytest.mark.parametrize("with_points", [True, False])
def test_report_stage_writes_the_sweep_files(tmp_path, capsys, with_points):
    variants = VARIANTS if with_points else {k: VARIANTS[k] for k in ("finetune", "teacher")}
    write_metrics(tmp_path, variants)
    assert run_stage("report", report_argv(tmp_path, list(variants)), capsys)[0] == 0
    root = tmp_path / "reports" / "cls"
    if not with_points:  # nothing pruned: no sweep files
        assert not (root / "data" / "sweeps.csv").exists() and not (root / "sweeps.md").exists()
        return
    with open(root / "data" / "sweeps.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["variant"] for r in rows][:3] == ["finetune", "prune-heads", "distill-heads-1"]
    assert {r["variant"]: float(r["remaining_weights"]) for r in rows}["prune-magnitude-0.9"] == 0.1
    assert Image.open(root / "figures" / "sweeps.png").size[0] > 300
    assert "| distill-magnitude-0.9 | magnitude | True | 0.9 | 10.0% | 0.7 |" in (root / "sweeps.md").read_text()
