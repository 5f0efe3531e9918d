"""End to end with another family: ``dvc repro`` with ``model.type: roberta``.

A clean copy on the golden run's tiny params (tests/golden.py) with its own DVC cache, so it runs beside the
golden run instead of after it, with the model (and the teacher's ``arch.type``) switched to RoBERTa, the
extractive QA task only (the one where a BPE tokenizer's offsets matter; the classification path of every family
runs in tests/test_families.py), one pruning method (``heads``, the one that changes shapes) and one ONNX export
source. ``dvc repro`` of the exports, the quantization and one evaluation runs every kind of model stage (and
the data stages): every model artifact must be a RoBERTa. (The other evaluations and the report run the same code
on other artifacts; the golden run covers them.) That the family switch leaves the data stages alone is checked
on the golden run itself (tests/test_e2e.py, without running anything).
"""

from __future__ import annotations

import json

import pytest

from golden import all_stages, commit_all, edit_yaml, fewer_methods, ran, sh, tiny_copy, upstream
from test_e2e import evaluation

pytestmark = pytest.mark.e2e


def roberta(params: dict) -> None:
    """RoBERTa student and teacher, the task ``qa`` only (``cls`` removed from every per-task section)."""
    for section in (params["tasks"], params["finetune"], params["teacher"], params["distill"]["train"],
                    params["prepare"]["datasets"]):
        section.pop("cls")
    params["model"]["type"] = "roberta"
    params["teacher"]["qa"]["arch"]["type"] = "roberta"
    params["export"]["sources"] = ["distill-heads"]


def test_dvc_repro_with_roberta(tmp_path):
    repo = tiny_copy(tmp_path / "repo", None)  # its own cache
    edit_yaml(repo / "params.yaml", roberta)
    fewer_methods(repo / "dvc.yaml", ["heads"])
    commit_all(repo, "roberta")
    targets = [*sorted(s for s in all_stages(repo) if s.startswith(("export@", "quantize@"))),
               "evaluate@qa-distill-heads"]
    out = sh(repo, "dvc", "repro", *targets)
    assert ran(out) == upstream(repo, *targets)
    assert {"tokenizer", "prepare@qa", "base", "pretrain@a", "merge", "finetune@qa", "teacher@qa", "prune@qa-heads",
            "distill@qa-heads", "quantize@qa-dynamic_int8-distill-heads", "export@qa-distill-heads"} <= ran(out)
    assert not [s for s in all_stages(repo) if "cls" in s]

    from pipeline.artifacts import load_model

    configs = sorted((repo / "models").rglob("config.json"))
    assert len(configs) >= 10  # base, pretrain a/b, merged, finetune, teacher, prune, distill, quantize, 2 exports
    for config in configs:
        assert json.loads(config.read_text())["model_type"] == "roberta", config
        model, meta = load_model(config.parent)
        if not meta["format"].startswith("onnx"):  # ONNX Runtime runs the exports: their config names the family
            assert type(model).__name__.startswith("Roberta"), (config, type(model).__name__)
    heads = repo / "models" / "qa" / "prune-heads"
    assert json.loads((heads / "pipeline.json").read_text())["results"]["heads_per_layer"] == [2, 2]
    assert (heads / "modeling_pruned.py").is_file()  # loadable by plain transformers (trust_remote_code)
    metrics = evaluation(repo, "qa", "distill-heads")  # task metrics, facts and speed
    assert 0 <= metrics["f1"] <= 100 and metrics["params"] > 0
