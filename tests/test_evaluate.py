"""Evaluate: model facts measured from stored artifacts, speed against the baseline, the stage's files."""

import copy
import json
import time

import numpy as np
import pytest
import torch
from transformers import BertForSequenceClassification

from pipeline.core.errors import PipelineError
from pipeline.core.files import atomic_dir, dir_hash
from pipeline.evaluation.facts import model_facts
from pipeline.evaluation import EvaluateParams
from pipeline.evaluation import speed as speed_mod
from pipeline.evaluation.speed import interleaved, paired_speedup, percentile, run_device, speed_facts
from pipeline.models import families
from pipeline.models.compact import compact_model
from pipeline.models.store import WEIGHTS, save_model
from pipeline.models.structure import prune_heads_
from pipeline.prune import PruneContext, prune_
from pipeline.prune.magnitude import MagnitudeParams
from pipeline.prune.masks import prunable_weights
from pipeline.quantize import quantize_model
from test_stage_errors import cls_data, run_stage, workdir  # noqa: F401 (fixtures)

META = {"head": "classification", "format": "dense", "task": "cls"}


def _save(root, name, model, tok, **extra):
    meta = {**META, "stage": name, **{k: v for k, v in extra.items() if k != "compact" and k != "tensors"}}
    tensors = extra.get("tensors")
    if extra.get("compact"):
        tensors, meta = compact_model(model, meta)
    with atomic_dir(root / name) as tmp:
        save_model(tmp, model, tok, meta, tensors=tensors)
    return root / name


@pytest.fixture
def variants(workdir, tiny_config, tokenizer):
    """Dense baseline, a 70%-sparse compact one, a head-pruned one and a dynamic-int8 one."""
    tok = workdir / "tok"
    tokenizer.save_pretrained(tok)
    root = workdir / "models" / "cls"
    torch.manual_seed(0)
    dense = BertForSequenceClassification(tiny_config).eval()
    out = {"finetune": _save(root, "finetune", dense, tok)}
    sparse = BertForSequenceClassification(tiny_config).eval()
    sparse.load_state_dict(dense.state_dict())
    prune_(sparse, "magnitude", MagnitudeParams(sparsity=0.7, scope="global"), PruneContext([], None))
    out["sparse"] = _save(root, "sparse", sparse, tok, compact=True)
    heads = BertForSequenceClassification(copy.deepcopy(tiny_config)).eval()  # head pruning edits its config
    heads.load_state_dict(dense.state_dict())
    prune_heads_(heads, {0: [0, 1], 1: [2]})
    out["heads"] = _save(root, "heads", heads, tok)
    out["quantize"] = _quantized(root, "quantize", dense, tok)
    return out, dense


def _quantized(root, name, model, tok, record=True, scheme_name="dynamic_int8"):
    """A dynamic-int8 (or ``scheme_name``) artifact of ``model`` recording its source's zeros per prunable
    matrix, as the quantize stage does (``record=False``: an artifact from before that record)."""
    tensors, scheme = quantize_model(model, scheme_name)
    if not record:
        del scheme["source_zeros"]
    return _save(root, name, model, tok, format=scheme_name, quantization=scheme, tensors=tensors)


def test_component_names():
    component = families.family("bert").component
    assert component("bert.embeddings.word_embeddings.weight") == ("embeddings", None)
    assert component("bert.encoder.layer.3.attention.self.query.weight") == ("attention", 3)
    assert component("bert.encoder.layer.1.intermediate.dense.weight") == ("ffn", 1)
    assert component("bert.encoder.layer.1.output.LayerNorm.bias") == ("ffn", 1)
    assert component("bert.pooler.dense.weight") == ("pooler", None)
    assert component("classifier.weight") == ("head", None)


def test_dense_facts_match_the_model(variants, tmp_path):
    paths, dense = variants
    flat, layers = model_facts(paths["finetune"])
    params = dict(dense.named_parameters())
    assert flat["params"] == sum(p.numel() for p in params.values())
    assert flat["params_head"] == params["classifier.weight"].numel() + params["classifier.bias"].numel()
    emb = sum(p.numel() for n, p in params.items() if ".embeddings." in n)
    assert flat["params_embeddings"] == emb
    assert [r["heads"] for r in layers] == [4, 4] and [r["ffn_neurons"] for r in layers] == [64, 64]
    layer0 = sum(p.numel() for n, p in params.items() if ".layer.0." in n)
    assert layers[0]["params"] == layer0 == layers[0]["attention_params"] + layers[0]["ffn_params"]
    assert flat["quantization"] == "none" and flat["storage"] == "dense"
    zeros = sum(int((p == 0).sum()) for p in params.values())  # zero-initialised biases count as zeros
    assert flat["nonzero_params"] == flat["params"] - zeros
    assert flat["sparsity"] == pytest.approx(zeros / flat["params"])
    # the dense float32 copy of a dense float32 artifact is the stored file up to its header metadata
    assert flat["size_bytes"] == (paths["finetune"] / WEIGHTS).stat().st_size
    assert abs(flat["dense_fp32_bytes"] - flat["size_bytes"]) < 256
    assert flat["dense_fp32_bytes"] > 4 * flat["params"]


def test_sparse_heads_and_quantized_facts(variants):
    paths, dense = variants
    base, _ = model_facts(paths["finetune"])
    sparse, layers = model_facts(paths["sparse"])
    assert sparse["params"] == base["params"] and sparse["storage"] == "compact"
    assert sparse["size_bytes"] < sparse["dense_fp32_bytes"] == base["dense_fp32_bytes"]
    assert sparse["compression_ratio"] == pytest.approx(sparse["dense_fp32_bytes"] / sparse["size_bytes"])
    for row in layers:  # global magnitude pruning of the encoder matrices: per-layer counts are exact
        assert row["sparsity"] == pytest.approx(1 - row["nonzero"] / row["params"]) and row["sparsity"] > 0.3
    heads, hl = model_facts(paths["heads"])
    assert [r["heads"] for r in hl] == [2, 1] and heads["heads_total"] == 3
    assert heads["params_attention"] < base["params_attention"] and heads["params_ffn"] == base["params_ffn"]
    quant, _ = model_facts(paths["quantize"])
    assert quant["quantization"] == "dynamic_int8" and quant["params"] == base["params"]
    assert quant["size_bytes"] < base["size_bytes"]


def test_percentile_is_nearest_rank():
    times = [float(x) for x in range(1, 11)]
    assert percentile(times, 0.5) == 5 and percentile(times, 0.9) == 9 and percentile([3.0], 0.9) == 3


def test_speedup_spread_is_the_percentiles_of_the_per_round_ratios():
    from pipeline.evaluation.speed import _ratios

    # per-round ratios baseline / variant: 2, 1, 0.5, 2, 4 -> median 2, nearest-rank p10 0.5 and p90 4
    out = _ratios("cpu_bs1", [1.0, 2.0, 4.0, 1.0, 0.5], [2.0] * 5, 1)
    assert (out["cpu_bs1_speedup_p10"], out["cpu_bs1_speedup"], out["cpu_bs1_speedup_p90"]) == (0.5, 2.0, 4.0)


def test_paired_speedup_is_the_median_of_back_to_back_ratios():
    # repeat 2 ran under load (both slow): the paired ratio still says 2x
    assert paired_speedup([1.0, 5.0, 1.0], [2.0, 10.0, 2.0]) == 2.0
    assert paired_speedup([1.0, 1.0, 2.0, 2.0], [1.0, 3.0, 2.0, 2.0]) == 1.0
    assert paired_speedup([2.0, 4.0], [1.0, 1.0]) == pytest.approx(0.375)


def test_interleaved_timing_alternates_order():
    calls = []
    models = {"a": "A", "b": "B"}
    interleaved(models, {}, warmup=1, repeats=3, call=lambda m, _: calls.append(m) or 1.0)
    assert calls == ["A", "B", "A", "B", "B", "A", "A", "B"]


def test_the_budget_stops_timing_early():
    calls = []

    def slow(model, _):
        calls.append(model)
        time.sleep(0.02)
        return 20.0

    models = {"a": "A", "b": "B"}
    t = interleaved(models, {}, warmup=3, repeats=50, call=slow, budget_s=0.0)
    # a budget of 0: one warm-up round and one timed round, however many were asked for
    assert calls == ["A", "B", "A", "B"] and t == {"a": [20.0], "b": [20.0]}
    calls.clear()
    t = interleaved(models, {}, warmup=1, repeats=50, call=slow, budget_s=0.3)
    assert 2 <= len(t["a"]) == len(t["b"]) < 50  # ~0.04 s a round: stopped by the budget, not the repeats
    assert len(calls) == 2 + 2 * len(t["a"])
    t = interleaved(models, {}, warmup=1, repeats=4, call=lambda m, _: 1.0, budget_s=60.0)
    assert len(t["a"]) == 4  # fast calls: the repeats stop first


def _pair(tiny_config):
    torch.manual_seed(0)
    small = BertForSequenceClassification(tiny_config).eval()
    big_config = tiny_config.__class__(**{**tiny_config.to_dict(), "hidden_size": 256, "intermediate_size": 1024,
                                          "num_hidden_layers": 4})
    return small, BertForSequenceClassification(big_config).eval()


def _make(length):
    def make(bs):
        ones = torch.ones(bs, length, dtype=torch.long)
        return {"input_ids": ones, "attention_mask": ones}
    return make


def test_speed_is_measured_against_the_baseline(tiny_config):
    small, big = _pair(tiny_config)
    cfg = EvaluateParams(latency_batch_size=8, latency_warmup=1, latency_repeats=5)
    out = speed_facts(small, big, torch.device("cpu"), _make(32), cfg)
    for label in ("bs1", "large"):
        assert out[f"cpu_{label}_p90_ms"] >= out[f"cpu_{label}_p50_ms"] >= out[f"cpu_{label}_p10_ms"] > 0
        assert out[f"cpu_{label}_baseline_p50_ms"] > 0 and out[f"cpu_{label}_speedup"] > 0
        assert out[f"cpu_{label}_calls"] == 5
    assert out["cpu_large_speedup"] > 1  # a much smaller model is faster than the baseline
    assert out["cpu_large_seq_per_s"] == pytest.approx(8 / (out["cpu_large_p50_ms"] / 1000))
    assert out["speedup"] == out["cpu_large_speedup"] and out["large_batch_size"] == 8
    for label in ("bs1", "large"):  # the spread of the per-round ratios brackets their median
        assert out[f"cpu_{label}_speedup_p10"] <= out[f"cpu_{label}_speedup"] <= out[f"cpu_{label}_speedup_p90"]
    assert (out["speedup_p10"], out["speedup_p90"]) == (out["cpu_large_speedup_p10"], out["cpu_large_speedup_p90"])
    # where and how it was timed: on a CPU run the CPU is the timing device, with the configured threads
    assert (out["timing_device"], out["timing_autocast"], out["threads"]) == ("cpu", "none", 1)
    assert out["cuda_device"] == "none"
    assert out["latency_budget_s"] == cfg.latency_budget_s and not any(k.startswith("cuda_") and k != "cuda_device"
                                                                       for k in out)
    budgeted = speed_facts(small, big, torch.device("cpu"), _make(32), EvaluateParams(
        latency_batch_size=8, latency_warmup=1, latency_repeats=50, latency_budget_s=0.0))
    assert budgeted["cpu_bs1_calls"] == budgeted["cpu_large_calls"] == 1  # the budget, not the 50 repeats


def test_cpu_timing_switch_on_an_accelerator(tiny_config, monkeypatch):
    """On a GPU run the variant is timed on the GPU; the CPU is timed too only when cpu_timing is set. The
    accelerator is played here by the CPU under the name "cuda" (its timer and placement swapped)."""
    seen = []

    def fake_cuda_call(model, inputs):
        seen.append(torch.get_num_threads())
        return speed_mod._cpu_call(model, inputs)

    monkeypatch.setitem(speed_mod.CALLS, "cuda", fake_cuda_call)
    monkeypatch.setattr(speed_mod, "_place", lambda x, device: x if device.type == "cuda" else x.to(device))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "fake GPU")
    small, big = _pair(tiny_config)
    for cpu_timing in (False, True):
        cfg = EvaluateParams(latency_batch_size=4, latency_warmup=1, latency_repeats=3, cpu_timing=cpu_timing,
                             threads=1)
        out = speed_facts(small, big, torch.device("cuda"), _make(16), cfg)
        assert out["timing_device"] == "cuda" and out["cuda_device"] == "fake GPU" and out["cpu_timing"] is cpu_timing
        assert out["cuda_large_calls"] == 3 and out["speedup"] == out["cuda_large_speedup"]
        assert out["latency_ms_p50"] == out["cuda_large_p50_ms"]
        cpu_keys = {k for k in out if k.startswith("cpu_") and k != "cpu_timing"}
        if cpu_timing:  # the deployment timing: every CPU key, with its thread count
            assert {"cpu_bs1_p50_ms", "cpu_large_speedup", "cpu_large_calls"} <= cpu_keys and out["threads"] == 1
        else:
            assert not cpu_keys and "threads" not in out
    assert seen and torch.get_num_threads() >= 1


def test_run_device_keeps_cpu_only_formats_on_the_cpu():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert run_device(cuda, ("cpu", "cuda")) == cuda
    assert run_device(cuda, ("cpu",)) == cpu  # e.g. dynamic int8 kernels, ONNX Runtime graphs
    assert run_device(cpu, ("cpu", "cuda")) == cpu


@pytest.mark.gpu
def test_cuda_speed_with_events_and_bf16(tiny_config):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    small, big = _pair(tiny_config)
    cfg = EvaluateParams(latency_batch_size=4, latency_warmup=2, latency_repeats=5)
    out = speed_facts(small, big, torch.device("cuda"), _make(16), cfg)
    assert out["cuda_bs1_p50_ms"] > 0 and out["cuda_large_seq_per_s"] > 0 and out["cuda_device"] != "none"
    assert out["timing_device"] == "cuda" and out["timing_autocast"] == "bf16" and out["cuda_large_calls"] == 5
    assert not [k for k in out if k.startswith("cpu_") and k != "cpu_timing"]  # cpu_timing off
    on = speed_facts(small, big, torch.device("cuda"), _make(16), EvaluateParams(
        latency_batch_size=4, latency_warmup=1, latency_repeats=3, cpu_timing=True))
    assert on["cpu_large_p50_ms"] > 0 and on["cuda_large_p50_ms"] > 0 and on["threads"] == 1
    assert next(small.parameters()).device.type == "cpu"  # the CPU timing ran last, on the CPU
    assert "cuda_bs1_p50_ms" not in speed_facts(small, big, torch.device("cpu"), _make(16), cfg)


def _prunable_zeros(model) -> tuple[int, int]:
    weights = prunable_weights(model)
    return sum(int((w == 0).sum()) for w in weights.values()), sum(w.numel() for w in weights.values())


def test_pruned_zeros_and_quantization_zeros_are_told_apart(variants, workdir, tokenizer):
    paths, dense = variants
    sparse_model = BertForSequenceClassification(dense.config).eval()
    sparse_model.load_state_dict(dense.state_dict())
    prune_(sparse_model, "magnitude", MagnitudeParams(sparsity=0.7, scope="global"), PruneContext([], None))
    with torch.no_grad():  # one outlier per matrix widens the int8 scale, so rounding zeroes small survivors
        for w in prunable_weights(sparse_model).values():
            w[0, 0] = 20.0
    pruned, n = _prunable_zeros(sparse_model)
    assert abs(pruned - round(0.7 * n)) <= len(prunable_weights(sparse_model))
    float_path = _save(workdir / "models" / "cls", "sparse-outliers", sparse_model, workdir / "tok")
    float_facts, float_layers = model_facts(float_path)  # float: its own zeros, none from quantization
    assert float_facts["prunable_params"] == n and float_facts["pruned_sparsity"] == pytest.approx(pruned / n)
    assert float_facts["quantization_zero_fraction"] == 0.0
    quant = _quantized(workdir / "models" / "cls", "quantize-sparse", sparse_model, workdir / "tok")
    facts, layers = model_facts(quant)
    assert facts["pruned_sparsity"] == pytest.approx(pruned / n)  # the source's zeros, as recorded
    # int8 rounding zeroes the smallest surviving weights too: counted apart, never as pruned
    stored = sum(int((w == 0).sum()) for k, w in _dequantized_prunable(quant).items())
    assert facts["quantization_zero_fraction"] == pytest.approx((stored - pruned) / n) and stored > pruned
    assert facts["sparsity"] > facts["pruned_sparsity"] * n / facts["params"]  # all zeros, whatever made them
    for row, float_row in zip(layers, float_layers):  # per layer: the same split, the layers add up
        assert row["pruned_sparsity"] == pytest.approx(float_row["pruned_sparsity"])
        assert row["quantization_zero_fraction"] >= 0
    assert sum(r["pruned_sparsity"] * r["prunable_params"] for r in layers) == pytest.approx(pruned)
    dense_quant, _ = model_facts(paths["quantize"])  # a dense source: every zero of it comes from rounding
    assert dense_quant["pruned_sparsity"] == 0.0 and dense_quant["quantization_zero_fraction"] > 0
    old = _quantized(workdir / "models" / "cls", "quantize-old", sparse_model, workdir / "tok", record=False)
    with pytest.raises(PipelineError, match="pipeline.json: quantization.source_zeros missing"):
        model_facts(old)


def _dequantized_prunable(path):
    from pipeline.evaluation.facts import float_state

    _, state = float_state(path)
    return {k: v for k, v in state.items() if v.dim() == 2 and ".encoder.layer." in k}


@pytest.mark.slow  # memory runs in fresh processes
def test_evaluate_stage_writes_its_files_with_lineage(workdir, variants, cls_data, capsys):
    from test_stage_errors import edit_params

    paths, _ = variants
    edit_params(workdir, lambda d: d["evaluate"].update(memory=True))  # the fresh-process CPU RSS, asked for
    for name in ("quantize", "sparse"):
        files = {kind: workdir / kind / f"{name}.json" for kind in ("eval", "facts", "speed", "details")}
        argv = ["--task", "cls", "--baseline", str(paths["finetune"]), "--details", str(files["details"]),
                "--facts", str(files["facts"]), "--speed", str(files["speed"]), "--predictions", f"pred/{name}",
                str(paths[name]), str(cls_data), str(files["eval"])]
        code, err = run_stage("evaluate", argv, capsys)
        assert code == 0, err
        metrics, facts, speed, details = (json.loads(f.read_text()) for f in files.values())
        lineage = metrics.pop("lineage")
        assert facts.pop("lineage") == speed.pop("lineage") == details["lineage"] == lineage
        assert {r["role"]: r.get("sha256") for r in lineage} == {
            "artifact": dir_hash(paths[name]), "data": dir_hash(cls_data), "tokenizer": lineage[2]["sha256"],
            "baseline": dir_hash(paths["finetune"]), "evaluate": None}
        assert lineage[0]["stage"] == name and lineage[4]["params"]["latency_batch_size"] == 32
        for flat in (metrics, facts, speed):  # flat scalars or null (readable in dvc metrics diff)
            assert all(isinstance(v, (int, float, str, type(None))) for v in flat.values())
            assert (flat["task"], flat["variant"]) == ("cls", name)
        # the task view only: no facts, timings or memory in the metrics file, no task metric elsewhere
        assert {"accuracy", "auc", "primary_metric", "eval_device", "format"} <= set(metrics)
        assert not {"params", "size_bytes", "latency_ms_p50"} & set(metrics) and "accuracy" not in speed
        assert 0 <= metrics["auc"] <= 1 and speed["cpu_bs1_speedup"] > 0 and speed["latency_ms_p50"] > 0
        # what ran: the scheme's own kernel (dynamic int8 Linears: all 2 x 6 + pooler + classifier), or dense GEMMs
        if not torch.cuda.is_available():
            assert speed["kernel"] == ("torch.ao dynamic int8 Linear (CPU)" if name == "quantize" else "torch cpu float32")
            assert (speed["fast_linears"], speed["slow_linears"]) == (14, 0)
            assert speed["dtype"] == "float32" and speed["compile_s"] is None and speed["kernel_reason"]
        assert speed["cpu_large_peak_rss_mb"] >= speed["cpu_bs1_peak_rss_mb"] > speed["cpu_bs1_forward_rss_mb"] >= 0
        # which device ran what: the run's device, the timing device (int8 kernels: the CPU), calls made
        on_gpu = torch.cuda.is_available() and name != "quantize"
        assert speed["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
        assert speed["timing_device"] == ("cuda" if on_gpu else "cpu")
        assert 1 <= speed[f"{speed['timing_device']}_large_calls"] <= 15 and speed["cpu_timing"] is False
        assert {"params", "sparsity", "pruned_sparsity", "quantization_zero_fraction", "size_bytes"} <= set(facts)
        on_gpu = torch.cuda.is_available() and metrics["format"] != "dynamic_int8"  # int8 kernels: CPU only
        assert metrics["eval_device"] == ("cuda" if on_gpu else "cpu")
        cm = np.array(details["classification"]["confusion"])
        assert cm.sum() == 4 and np.trace(cm) / 4 == pytest.approx(metrics["accuracy"])
        assert cm.sum(axis=1).tolist() == [2, 2]  # rows are the gold labels 0, 1, 0, 1
        # the report draws its plots from the details: the positive-class ROC points and the per-layer facts
        (roc,) = details["classification"]["roc"].values()
        assert (roc["fpr"][0], roc["tpr"][0]) == (0.0, 0.0) and (roc["fpr"][-1], roc["tpr"][-1]) == (1.0, 1.0)
        assert len(details["layers"]) == 2
        assert {"layer", "sparsity", "pruned_sparsity", "heads", "ffn_neurons"} <= set(details["layers"][0])
        # per-example predictions: gold and predicted label, class probabilities; they give the accuracy
        preds = json.loads((workdir / "pred" / name / "predictions.json").read_text())
        assert [(p["row"], p["idx"], p["label"]) for p in preds] == [(0, 0, 0), (1, 1, 1), (2, 2, 0), (3, 3, 1)]
        for p in preds:
            assert sum(p["probabilities"]) == pytest.approx(1) and p["prediction"] == int(np.argmax(p["probabilities"]))
        assert np.mean([p["prediction"] == p["label"] for p in preds]) == pytest.approx(metrics["accuracy"])
    assert facts["quantization"] == "none" and facts["sparsity"] > 0.3 and facts["pruned_sparsity"] > 0.6
    assert not (workdir / "plots").exists()  # no per-variant plot files: the report writes long-format ones


def test_memory_false_measures_speed_without_memory_runs(workdir, variants, cls_data, capsys):
    from test_stage_errors import edit_params

    paths, _ = variants
    edit_params(workdir, lambda d: d["evaluate"].update(memory=False))
    argv = ["--task", "cls", "--baseline", str(paths["finetune"]), "--details", "d.json", "--facts", "f.json",
            "--speed", "s.json", "--predictions", "p", str(paths["sparse"]), str(cls_data), "m.json"]
    code, err = run_stage("evaluate", argv, capsys)
    assert code == 0, err
    speed = json.loads((workdir / "s.json").read_text())
    assert speed["cpu_bs1_speedup"] > 0 and not [k for k in speed if k.endswith("_mb")]
    assert speed["timing_device"] == speed["device"] == "cpu" or torch.cuda.is_available()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal")
@pytest.mark.parametrize("scheme_name", ["weight_int4", "fp8"])
def test_a_scheme_without_a_cpu_kernel_is_scored_but_not_timed(workdir, variants, cls_data, capsys, scheme_name):
    """weight-only int4 / fp8 weights are dequantized on a CPU: accuracy and size only, speed null, one line why."""
    paths, dense = variants
    art = _quantized(workdir / "models" / "cls", f"q-{scheme_name}", dense, workdir / "tok", scheme_name=scheme_name)
    argv = ["--task", "cls", "--baseline", str(paths["finetune"]), "--details", "d.json", "--facts", "f.json",
            "--speed", "s.json", "--predictions", "p", str(art), str(cls_data), "m.json"]
    code, err = run_stage("evaluate", argv, capsys)
    assert code == 0, err
    speed, metrics = (json.loads((workdir / f).read_text()) for f in ("s.json", "m.json"))
    assert speed["kernel"] is None and "no CPU kernel" in speed["kernel_reason"]
    assert "accuracy and size only" in speed["kernel_reason"]
    assert speed["latency_ms_p50"] is None and speed["speedup"] is None and speed["latency_ms_p90"] is None
    assert not [k for k in speed if k.startswith("cpu_bs1") or k.startswith("cpu_large_p")]  # nothing timed
    assert speed["fast_linears"] == 0 and speed["slow_linears"] == 14 and speed["timing_device"] == "cpu"
    assert 0 <= metrics["accuracy"] <= 1 and metrics["eval_device"] == "cpu"  # still scored
    assert sum(speed["kernel_reason"] in line for line in err) == 1  # the one line in the log


def test_evaluate_stage_missing_baseline_writes_nothing(workdir, variants, cls_data, capsys):
    paths, _ = variants
    argv = ["--task", "cls", "--baseline", "models/cls/nope", "--details", "d.json", "--facts", "f.json",
            "--speed", "s.json", "--predictions", "p", str(paths["sparse"]), str(cls_data), "m.json"]
    code, err = run_stage("evaluate", argv, capsys)
    assert code == 2 and len(err) == 1 and "models/cls/nope" in err[0]
    assert not any((workdir / n).exists() for n in ("d.json", "f.json", "s.json", "p", "m.json"))


@pytest.mark.gpu
def test_task_metrics_on_the_gpu_match_the_cpu(cls_data, tiny_config, tokenizer):
    """The evaluate stage scores on the GPU when there is one (fp32): same scores and logits as on the CPU."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from pipeline import tasks
    from pipeline.evaluation.scoring import task_metrics
    from pipeline.tasks.classification import ClassificationParams

    task = tasks.get(ClassificationParams(max_length=16, num_labels=2))
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config).eval()
    cpu = task_metrics(task, copy.deepcopy(model), cls_data, tokenizer, 2, ("cpu",))
    gpu = task_metrics(task, model, cls_data, tokenizer, 2, ("cpu", "cuda"))
    assert (cpu.device, gpu.device) == ("cpu", "cuda")
    assert gpu.scores.keys() == cpu.scores.keys()
    for key, value in cpu.scores.items():
        assert gpu.scores[key] == pytest.approx(value, abs=1e-6), key
