"""More bad inputs at the stage level: one line naming the culprit, exit code 2, nothing written.

Complements tests/test_stage_errors.py (unknown key, missing artifact, corrupt SafeTensors, quantizing a
quantized artifact, missing columns, vocab mismatch) and tests/test_params.py (types, impossible values).
"""

from __future__ import annotations

import json

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM

from conftest import WORDS
from pipeline import schema
from pipeline.config import loader
from pipeline.core.files import atomic_dir
from pipeline.models.store import save_model
from pipeline.core.errors import PipelineError
from test_stage_errors import artifact, edit_params, run_stage, workdir  # noqa: F401 (fixtures)


def mlm_artifact(path, config: BertConfig, tokenizer_dir, seed: int = 0):
    torch.manual_seed(seed)
    with atomic_dir(path) as tmp:
        save_model(tmp, BertForMaskedLM(config), tokenizer_dir, {"stage": "pretrain", "head": "mlm", "format": "dense"})
    return path


def write_split(directory, split: str, rows: list[dict]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def cls_rows(n: int) -> list[dict]:
    return [{"sentence": " ".join(WORDS[(i + j) % len(WORDS)] for j in range(5)), "label": i % 2, "idx": i}
            for i in range(n)]


def test_dataset_with_an_empty_split(workdir, capsys):
    local = workdir / "mydata"
    write_split(local, "train", cls_rows(8))
    write_split(local, "validation", [])
    edit_params(workdir, lambda d: d["prepare"]["datasets"]["cls"].update(source=str(local)))
    code, err = run_stage("prepare", ["data"], capsys)
    assert code == 2 and len(err) == 1, err
    assert "validation" in err[0] and "empty" in err[0]
    assert not (workdir / "data").exists()


def test_keeping_more_heads_than_the_model_has(workdir, artifact, capsys):  # noqa: F811
    write_split(workdir / "data" / "cls", "train", cls_rows(16))
    write_split(workdir / "data" / "cls", "validation", cls_rows(8))
    edit_params(workdir, lambda d: d["prune"]["heads"].update(keep_heads=8))  # the tiny model has 4
    out = workdir / "models" / "cls" / "prune-heads"
    code, err = run_stage("prune", ["--task", "cls", "--method", "heads", str(artifact), "data/cls", str(out)], capsys)
    assert code == 2 and len(err) == 1, err
    assert "prune.heads.keep_heads=8" in err[0] and "heads per layer" in err[0]
    assert not out.exists() and not list(out.parent.glob(".prune-heads.tmp-*"))


def test_merging_models_of_different_shapes(workdir, tiny_config, tokenizer, capsys):
    tok = workdir / "tok"
    tokenizer.save_pretrained(tok)
    a = mlm_artifact(workdir / "models" / "a", tiny_config, tok)
    wider = BertConfig(**{**tiny_config.to_dict(), "intermediate_size": 128})
    b = mlm_artifact(workdir / "models" / "b", wider, tok, seed=1)
    out, metrics = workdir / "models" / "merged", workdir / "metrics" / "merge.json"
    code, err = run_stage("merge", [str(a), str(b), "--base", str(a), "--corpus", "data/corpus", "--out", str(out),
                                    "--metrics", str(metrics)], capsys)
    assert code == 2 and len(err) == 1, err
    assert "cannot merge" in err[0] and str(b) in err[0] and "intermediate.dense.weight" in err[0]
    assert "(128, 32)" in err[0] and "(64, 32)" in err[0]
    assert not out.exists() and not metrics.exists()


def test_diverging_training_stops_with_a_clear_line(workdir, tiny_config, tokenizer, capsys):
    tok = workdir / "tok"
    tokenizer.save_pretrained(tok)
    merged = mlm_artifact(workdir / "models" / "merged", tiny_config, tok)
    write_split(workdir / "data" / "cls", "train", cls_rows(64))
    write_split(workdir / "data" / "cls", "validation", cls_rows(8))
    # An absurd learning rate: the first Adam step sends the weights to ~1e30 and the loss to inf/nan.
    edit_params(workdir, lambda d: d["finetune"]["cls"].update(lr=1.0e30, epochs=1, batch_size=8))
    out = workdir / "models" / "cls" / "finetune"
    code, err = run_stage("finetune", ["--task", "cls", str(merged), "data/cls", str(out)], capsys)
    # tqdm's progress bar shares stderr and ends with a carriage return, not a newline.
    err = [line.rsplit("\r", 1)[-1] for line in err]
    err = [line for line in err if line.strip() and not line.startswith("finetune cls:")]
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: finetune: finetune cls: loss is ") and "(lower the learning rate)" in err[0]
    assert any(word in err[0] for word in ("nan", "inf"))
    assert not out.exists()


@pytest.mark.parametrize(
    "section, mutate, message",
    [
        ("prune.gradual", lambda d: d["prune"]["gradual"].update(begin=0.8, end=0.5), "need 0 <= begin < end <= 1"),
        ("prune.gradual", lambda d: d["prune"]["gradual"].update(initial_sparsity=0.9),
         "need 0 <= initial_sparsity <= sparsity < 1"),
        ("prune.nm", lambda d: d["prune"]["nm"].update(n=5, m=4), "n and m must satisfy 0 < n < m"),
        ("prune.ffn", lambda d: d["prune"]["ffn"].update(keep_ratio=1.5), "keep_ratio must be in (0, 1]"),
        ("merge.ties", lambda d: d["merge"]["ties"].update(density=0.0), "density must be in (0, 1]"),
        ("merge.weights", lambda d: d["merge"].update(weights=0.5), "'merge.weights' must be a list, got float"),
        ("quantize.schemes", lambda d: d.update(quantize=[1, 2]), "'quantize' must be a mapping, got list"),
        ("finetune.cls", lambda d: d["finetune"]["cls"].update(epochs=True), "'finetune.cls.epochs' must be float"),
        ("finetune.cls", lambda d: d["finetune"]["cls"].update(lr=-1.0), "lr must be > 0"),
    ],
)
def test_impossible_param_combinations_name_the_section(workdir, section, mutate, message):
    edit_params(workdir, mutate)
    with pytest.raises(PipelineError) as err:
        loader.load({section: schema.section_type(section)}, file=workdir / "params.yaml")
    assert str(err.value).startswith("params.yaml: ") and message in str(err.value)
    assert "\n" not in str(err.value)
