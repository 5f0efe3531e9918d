"""Evaluate: model facts measured from stored artifacts, speed against the baseline, the stage's files."""

import copy
import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from transformers import BertForSequenceClassification

from pipeline.core.files import atomic_dir
from pipeline.evaluate.facts import model_facts
from pipeline.evaluate.speed import interleaved, paired_speedup, percentile, speed_facts
from pipeline.models import families
from pipeline.models.compact import compact_model
from pipeline.models.store import WEIGHTS, save_model
from pipeline.models.structure import prune_heads_
from pipeline.prune import PruneContext, prune_
from pipeline.prune.magnitude import MagnitudeParams
from pipeline.quantize.dynamic_int8 import int8_tensors, quantize_dynamic_int8
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
    tensors, scheme = int8_tensors(quantize_dynamic_int8(dense))
    out["quantize"] = _save(root, "quantize", dense, tok, format="dynamic_int8", quantization=scheme,
                            tensors=tensors)
    return out, dense


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


def test_speed_is_measured_against_the_baseline(tiny_config):
    torch.manual_seed(0)
    small = BertForSequenceClassification(tiny_config).eval()
    big_config = tiny_config.__class__(**{**tiny_config.to_dict(), "hidden_size": 256, "intermediate_size": 1024,
                                          "num_hidden_layers": 4})
    big = BertForSequenceClassification(big_config).eval()

    def make(bs):
        ones = torch.ones(bs, 32, dtype=torch.long)
        return {"input_ids": ones, "attention_mask": ones}

    out = speed_facts(small, big, ("cpu", "cuda"), make, 8, warmup=1, repeats=5, threads=1)
    for label in ("bs1", "large"):
        assert out[f"cpu_{label}_p90_ms"] >= out[f"cpu_{label}_p50_ms"] > 0
        assert out[f"cpu_{label}_baseline_p50_ms"] > 0 and out[f"cpu_{label}_speedup"] > 0
    assert out["cpu_large_speedup"] > 1  # a much smaller model is faster than the baseline
    assert out["cpu_large_seq_per_s"] == pytest.approx(8 / (out["cpu_large_p50_ms"] / 1000))
    assert out["speedup"] == out["cpu_large_speedup"] and out["large_batch_size"] == 8


@pytest.mark.gpu
def test_cuda_speed_with_events_and_bf16(tiny_config):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config).eval()

    def make(bs):
        ones = torch.ones(bs, 16, dtype=torch.long)
        return {"input_ids": ones, "attention_mask": ones}

    out = speed_facts(model, model, ("cpu", "cuda"), make, 4, warmup=2, repeats=5, threads=1)
    assert out["cuda_bs1_p50_ms"] > 0 and out["cuda_large_seq_per_s"] > 0 and out["cuda_device"] != "none"
    assert next(model.parameters()).device.type == "cpu"  # moved back
    assert "cuda_bs1_p50_ms" not in speed_facts(model, model, ("cpu",), make, 4, 1, 2, 1)


def test_evaluate_stage_writes_flat_metrics_and_details(workdir, variants, cls_data, capsys):
    paths, _ = variants
    for name in ("quantize", "sparse"):
        argv = ["--task", "cls", "--baseline", str(paths["finetune"]), "--details", f"details/{name}.json",
                str(paths[name]), str(cls_data), f"eval/{name}.json"]
        code, err = run_stage("evaluate", argv, capsys)
        assert code == 0, err
        metrics = json.loads((workdir / "eval" / f"{name}.json").read_text())
        assert all(isinstance(v, (int, float, str)) for v in metrics.values())  # flat: readable metrics diff
        assert 0 <= metrics["auc"] <= 1 and metrics["cpu_bs1_speedup"] > 0 and metrics["latency_ms_p50"] > 0
        on_gpu = torch.cuda.is_available() and metrics["format"] != "dynamic_int8"  # int8 kernels: CPU only
        assert metrics["eval_device"] == ("cuda" if on_gpu else "cpu")
        details = json.loads((workdir / "details" / f"{name}.json").read_text())
        cm = np.array(details["classification"]["confusion"])
        assert cm.sum() == 4 and np.trace(cm) / 4 == pytest.approx(metrics["accuracy"])
        assert cm.sum(axis=1).tolist() == [2, 2]  # rows are the gold labels 0, 1, 0, 1
        # the report draws its plots from the details: the positive-class ROC points and the per-layer facts
        (roc,) = details["classification"]["roc"].values()
        assert (roc["fpr"][0], roc["tpr"][0]) == (0.0, 0.0) and (roc["fpr"][-1], roc["tpr"][-1]) == (1.0, 1.0)
        assert len(details["layers"]) == 2
        assert {"layer", "sparsity", "heads", "ffn_neurons"} <= set(details["layers"][0])
    assert metrics["quantization"] == "none" and metrics["sparsity"] > 0.3
    assert not (workdir / "plots").exists()  # no per-variant plot files: the report writes long-format ones


def test_evaluate_stage_missing_baseline_writes_nothing(workdir, variants, cls_data, capsys):
    paths, _ = variants
    argv = ["--task", "cls", "--baseline", "models/cls/nope", "--details", "d.json",
            str(paths["sparse"]), str(cls_data), "m.json"]
    code, err = run_stage("evaluate", argv, capsys)
    assert code == 2 and len(err) == 1 and "models/cls/nope" in err[0]
    assert not any((workdir / n).exists() for n in ("d.json", "m.json"))
