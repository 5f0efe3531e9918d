"""Bad input: one clear line naming the culprit, a non-zero exit, nothing written."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
import yaml
from transformers import BertForSequenceClassification

from tools.code_deps import ROOT
from pipeline.artifacts import load_model
from pipeline.core.files import atomic_dir
from pipeline.models.store import save_model
from pipeline.core.errors import PipelineError


def stage(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A directory with the shipped params.yaml as the current directory."""
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def artifact(workdir, tiny_config, tokenizer):
    """A small dense classification artifact."""
    tok_dir = workdir / "tok"
    tokenizer.save_pretrained(tok_dir)
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config)
    out = workdir / "models" / "cls" / "finetune"
    with atomic_dir(out) as tmp:
        save_model(tmp, model, tok_dir, {"stage": "finetune", "head": "classification", "format": "dense",
                                         "task": "cls"})
    return out


@pytest.fixture
def cls_data(workdir):
    """A tiny classification data directory (validation split) in the words of the test tokenizer."""
    d = workdir / "data" / "cls"
    d.mkdir(parents=True)
    sentences = ["the movie was good", "the plot was awful", "not very great", "the movie was bad and dull"]
    rows = [{"sentence": s, "label": i % 2, "idx": i} for i, s in enumerate(sentences)]
    (d / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def edit_params(workdir, fn):
    data = yaml.safe_load((workdir / "params.yaml").read_text())
    fn(data)
    (workdir / "params.yaml").write_text(yaml.safe_dump(data))


def run_stage(name, argv, capsys):
    code = stage(name).main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def test_unknown_param_key(workdir, artifact, capsys):
    edit_params(workdir, lambda d: d["prune"]["magnitude"].update(sparsityy=0.3))
    out = workdir / "models" / "cls" / "prune-magnitude"
    code, err = run_stage("prune", ["--task", "cls", "--method", "magnitude", str(artifact), "data/cls", str(out)], capsys)
    assert code == 2 and len(err) == 1 and "prune.magnitude.sparsityy" in err[0]
    assert not out.exists()


Q = ["--task", "cls", "--scheme", "dynamic_int8"]  # the quantize stage's first arguments


def test_missing_input_artifact(workdir, capsys):
    out = workdir / "models" / "cls" / "quantize"
    code, err = run_stage("quantize", [*Q, "models/cls/nothing", "data/cls", str(out)], capsys)
    assert code == 2 and len(err) == 1 and "models/cls/nothing" in err[0]
    assert not out.exists()


def test_corrupt_safetensors(workdir, artifact, capsys):
    weights = artifact / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # truncated
    with pytest.raises(PipelineError, match="model.safetensors: corrupt"):
        load_model(artifact)
    out = workdir / "models" / "cls" / "quantize"
    code, err = run_stage("quantize", [*Q, str(artifact), "data/cls", str(out)], capsys)
    assert code == 2 and len(err) == 1 and "model.safetensors" in err[0]
    assert not out.exists()


def test_quantizing_a_quantized_artifact(workdir, artifact, cls_data, capsys):
    q1 = workdir / "models" / "cls" / "quantize"
    assert run_stage("quantize", [*Q, str(artifact), "data/cls", str(q1)], capsys)[0] == 0
    results = json.loads((q1 / "pipeline.json").read_text())["results"]
    assert 0 < results["logit_max_abs_error"] < 0.5 and results["compared_logits"] == 8
    q2 = workdir / "models" / "cls" / "quantize2"
    code, err = run_stage("quantize", [*Q, str(q1), "data/cls", str(q2)], capsys)
    assert code == 2 and "already quantized" in err[0] and not q2.exists()


def test_dataset_missing_columns(workdir, capsys):
    local = workdir / "mydata"
    local.mkdir()
    for split in ("train", "validation"):
        (local / f"{split}.jsonl").write_text(json.dumps({"text": "no label here", "idx": 0}) + "\n")
    edit_params(workdir, lambda d: d["prepare"]["datasets"]["cls"].update(source=str(local)))
    code, err = run_stage("prepare", ["data"], capsys)
    # 'text' is read as 'sentence' (an alias); nothing can be the label, and 'idx' is never suggested for it
    assert code == 2 and len(err) == 1 and "mydata/train.jsonl: no column label" in err[0]
    assert "columns: {label: <column>}" in err[0]
    assert not (workdir / "data").exists()


def test_tokenizer_vocab_mismatch(workdir, artifact, tiny_config, capsys):
    from pipeline.models.build import ArchParams, init_model

    ckpt = workdir / "ckpt"
    BertForSequenceClassification(tiny_config).save_pretrained(ckpt)
    with pytest.raises(PipelineError, match="vocab_size 64 but the tokenizer has 1000"):
        init_model(ArchParams(base=str(ckpt)), "classification", vocab_size=1000, pad_token_id=0)


def test_cli_exit_code_and_single_line(workdir, artifact):
    proc = subprocess.run([sys.executable, str(ROOT / "stages" / "quantize.py"), "--task", "cls", "--scheme", "int3",
                           str(artifact), "data/cls", "out"],
                          capture_output=True, text=True, cwd=workdir,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: quantize: params.yaml: 'quantize.schemes': unknown quantization scheme 'int3' (known: bf16, "
        "dynamic_int8, fp16, fp8, weight_int4, weight_int8)"
    ]
    assert not (workdir / "out").exists()
