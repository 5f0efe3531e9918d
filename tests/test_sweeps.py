"""Sweep points and quantized combinations at the stage level, on a tiny artifact.

``stages/prune.py --target`` (what a ``prune.sweep`` point passes) sets the method's registered target and says
so in ``pipeline.json``; without it the artifact is what it always was. ``stages/quantize.py`` quantizes any
variant: a compact (zeroing) and a structurally pruned one here, as ``quantize.sources`` combinations do.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from transformers import BertForSequenceClassification

from tools.code_deps import ROOT
from pipeline.artifacts import load_model
from pipeline.core.errors import PipelineError
from pipeline.core.files import atomic_dir
from pipeline.evaluation.facts import model_facts
from pipeline.models.store import save_model
from pipeline.prune import METHODS
from pipeline.prune.sweep import SweepPoint, at_point, with_target
from test_stage_errors import stage


@pytest.fixture
def workdir(tmp_path, monkeypatch, tiny_config, tokenizer):
    return make_workdir(tmp_path, monkeypatch, tiny_config, tokenizer)


def make_workdir(tmp_path, monkeypatch, tiny_config, tokenizer):
    """The shipped params.yaml, a tiny fine-tuned classifier ``models/cls/finetune`` and tiny ``data/cls``, in
    ``tmp_path`` made the current directory."""
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    tokenizer.save_pretrained(tmp_path / "tok")
    torch.manual_seed(0)
    with atomic_dir(tmp_path / "models" / "cls" / "finetune") as tmp:
        save_model(tmp, BertForSequenceClassification(tiny_config), tmp_path / "tok",
                   {"stage": "finetune", "head": "classification", "format": "dense", "task": "cls"})
    data = tmp_path / "data" / "cls"
    data.mkdir(parents=True)
    words = ["the movie was good", "the plot was awful", "not very great", "the movie was bad and dull"]
    for split, n in (("train", 16), ("validation", 8)):
        rows = [{"sentence": words[i % 4], "label": i % 2, "idx": i} for i in range(n)]
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def prune(method: str, out: str, *extra: str) -> int:
    return stage("prune").main(["--task", "cls", "--method", method, "models/cls/finetune", "data/cls",
                                f"models/cls/{out}", *extra])


def meta(variant: str) -> dict:
    return json.loads(Path("models/cls", variant, "pipeline.json").read_text())


def test_target_sets_the_registered_knob_and_is_recorded(workdir):
    assert prune("magnitude", "prune-magnitude-0.9", "--target", "0.9") == 0
    point = meta("prune-magnitude-0.9")
    assert point["params"]["magnitude"]["sparsity"] == 0.9 and point["sweep"] == {"target": "sparsity", "value": 0.9}
    assert abs(point["results"]["sparsity"] - 0.9) < 1e-3
    assert prune("heads", "prune-heads-1", "--target", "1") == 0
    assert meta("prune-heads-1")["results"]["heads_per_layer"] == [1, 1]
    # the plain branch reads prune.magnitude.sparsity (0.6) and records no sweep
    assert prune("magnitude", "prune-magnitude") == 0
    plain = meta("prune-magnitude")
    assert "sweep" not in plain and plain["params"]["magnitude"]["sparsity"] == 0.6


def test_bad_target_is_one_line_and_writes_nothing(workdir, capsys):
    assert prune("magnitude", "prune-magnitude-1.0", "--target", "1.0") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "magnitude sparsity=1.0: sparsity must be in [0, 1)" in err[0], err
    assert prune("heads", "prune-heads-0.5", "--target", "0.5") == 2
    assert "heads keep_heads=0.5: must be int" in capsys.readouterr().err
    assert not (workdir / "models" / "cls" / "prune-magnitude-1.0").exists()
    assert not (workdir / "models" / "cls" / "prune-heads-0.5").exists()


def test_every_shipped_method_names_a_target_of_its_params():
    for name, entry in METHODS.all().items():
        assert entry.target is not None, name
        base = entry.params()
        value = getattr(base, entry.target)
        assert getattr(with_target(entry, base, value), entry.target) == value


def test_sweep_points_are_checked_against_the_method():
    assert SweepPoint("ffn", 0.25).value == 0.25
    assert with_target(METHODS.get("magnitude"), METHODS.get("magnitude").params(), 0).sparsity == 0.0  # an int is ok
    with pytest.raises(ValueError, match="unknown pruning method 'nope'"):
        SweepPoint("nope", 0.5)
    with pytest.raises(ValueError, match="layers keep_layers='2': must be int"):
        SweepPoint("layers", "2")
    with pytest.raises(PipelineError, match="ffn keep_ratio=1.5: keep_ratio must be in"):
        at_point(METHODS.get("ffn"), METHODS.get("ffn").params(), 1.5)
    assert at_point(METHODS.get("ffn"), METHODS.get("ffn").params(), None)[1] == {}


@pytest.mark.parametrize("scheme", ["dynamic_int8", "weight_int8"])
def test_quantize_combinations_of_pruned_variants(workdir, scheme):
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["quantize"]["schemes"] = [scheme]
    params["quantize"]["weight_int8"]["group_size"] = 8  # a head of the tiny model is 8 wide
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    assert prune("magnitude", "prune-magnitude") == 0 and prune("heads", "prune-heads") == 0
    for source in ("prune-magnitude", "prune-heads"):
        out = f"models/cls/quantize-{scheme}-{source}"
        assert stage("quantize").main(["--task", "cls", "--scheme", scheme, f"models/cls/{source}", "data/cls",
                                       out]) == 0
        model, q = load_model(out)
        assert q["format"] == scheme and q["results"]["logit_max_abs_error"] < 0.5
        (qf, qlayers), (sf, slayers) = model_facts(out), model_facts(f"models/cls/{source}")
        # the pruned structure survives quantization: heads per layer, and (weights dequantized) no new non-zeros
        assert [r["heads"] for r in qlayers] == [r["heads"] for r in slayers]
        assert qf["nonzero_attention"] <= sf["nonzero_attention"] and qf["nonzero_ffn"] <= sf["nonzero_ffn"]
    heads, quantized = model_facts("models/cls/prune-heads")[0], model_facts(f"models/cls/quantize-{scheme}-prune-heads")[0]
    assert quantized["size_bytes"] < heads["size_bytes"]  # quantization shrinks the pruned model further
