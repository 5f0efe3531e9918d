"""End to end with another family: ``dvc repro`` of the embedded default with ``model.type: roberta``.

The same tiny params and pruning methods as :mod:`test_e2e`, in a temporary copy of the repository; every
stage must run and every model artifact must be a RoBERTa (the teachers too: their ``arch.type`` is set).
"""

from __future__ import annotations

import json

import pytest
import yaml

from clean_copy import clean_copy
from test_e2e import all_stages, evaluation, fewer_methods, ran, sh, tiny

pytestmark = pytest.mark.e2e


def test_dvc_repro_with_roberta(tmp_path):
    repo = tmp_path / "repo"
    clean_copy(repo)
    params = tiny(yaml.safe_load((repo / "params.yaml").read_text()))
    params["model"]["type"] = "roberta"
    for task in params["teacher"]:
        params["teacher"][task]["arch"]["type"] = "roberta"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    fewer_methods(repo / "dvc.yaml")
    sh(repo, "git", "init", "-q")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "init")
    out = sh(repo, "dvc", "repro")
    assert ran(out) == all_stages(repo)

    from pipeline.models.store import load_model

    configs = sorted((repo / "models").rglob("config.json"))
    assert len(configs) >= 15
    for config in configs:
        assert json.loads(config.read_text())["model_type"] == "roberta", config
        model, meta = load_model(config.parent)
        if not meta["format"].startswith("onnx"):  # ONNX Runtime runs the exports: their config names the family
            assert type(model).__name__.startswith("Roberta"), (config, type(model).__name__)
    heads = repo / "models" / "cls" / "prune-heads"
    assert json.loads((heads / "pipeline.json").read_text())["results"]["heads_per_layer"] == [2, 2]
    assert (heads / "modeling_pruned.py").is_file()  # loadable by plain transformers (trust_remote_code)
    metrics = evaluation(repo, "qa", "distill-heads")  # task metrics, facts and speed
    assert 0 <= metrics["f1"] <= 100 and metrics["params"] > 0
