"""End to end: ``dvc repro`` of the whole pipeline in a temporary copy of the repository.

The session's golden run (tests/golden.py: tiny params, one ``dvc repro``) is checked read-only: every stage ran
and every artifact reloads. Then the caching contract, each on its own clone of the golden run sharing its DVC
cache: a distill-only param change makes exactly distill and its downstream stale (and one branch rerun for real
shows the change in ``dvc metrics diff``), reverting restores from the run-cache without running anything, a
prepare change makes every stage that reads the data stale, and push/pull through a local remote gives
byte-identical artifacts in a fresh clone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from golden import all_stages, changed, edit_yaml, ran, rerun_set, restored, set_param, sh, tree_hashes, work_copy

pytestmark = pytest.mark.e2e


@pytest.fixture
def repo(golden_repo) -> Path:
    """The golden run, read-only."""
    return golden_repo


def test_first_repro_runs_every_stage_and_artifacts_reload(repo):
    assert ran((repo / "first_repro.log").read_text()) == all_stages(repo)
    from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification

    from pipeline.artifacts import load_model

    for task, auto in (("cls", AutoModelForSequenceClassification), ("qa", AutoModelForQuestionAnswering)):
        methods = prune_methods(repo)
        for variant in ("finetune", "teacher", "quantize-dynamic_int8-distill-heads",
                        *(f"{k}-{m}" for k in ("prune", "distill") for m in methods)):
            art = repo / "models" / task / variant
            for name in ("model.safetensors", "config.json", "pipeline.json", "tokenizer.json", "vocab.txt"):
                assert (art / name).is_file(), art / name
            model, meta = load_model(art)
            assert meta["task"] == task
            metrics = evaluation(repo, task, variant)
            assert metrics["params"] > 0 and metrics["size_bytes"] > 0 and metrics["latency_ms_p50"] > 0
        # Dense unpruned artifacts load with plain transformers too.
        auto.from_pretrained(repo / "models" / task / "finetune")
    heads = json.loads((repo / "models" / "cls" / "prune-heads" / "pipeline.json").read_text())
    assert heads["results"]["heads_per_layer"] == [2, 2]
    summary = json.loads((repo / "reports" / "summary.json").read_text())
    assert {r["variant"] for r in summary["cls"]} >= {"finetune", "quantize-dynamic_int8-distill-heads"}


def evaluation(repo: Path, task: str, variant: str) -> dict:
    """A variant's task metrics, facts and speed (the evaluate stage's three flat files) in one dict."""
    return {k: v for kind in ("eval", "facts", "speed")
            for k, v in json.loads((repo / "metrics" / kind / task / f"{variant}.json").read_text()).items()}


def prune_methods(repo: Path) -> list[str]:
    dvc_vars = yaml.safe_load((repo / "dvc.yaml").read_text())["vars"]
    return next(v["prune_methods"] for v in dvc_vars if "prune_methods" in v)


def test_distill_param_reruns_exactly_distill_and_downstream_then_revert_restores(golden_repo, tmp_path):
    repo = work_copy(golden_repo, tmp_path / "repo")
    methods = prune_methods(repo)
    set_param(repo, "distill.kd.temperature", 3.0)
    expected = {f"distill@{t}-{m}" for t in ("cls", "qa") for m in methods}
    assert changed(repo) == expected
    expected |= {f"evaluate@{t}-distill-{m}" for t in ("cls", "qa") for m in methods}
    expected |= {f"{s}@{t}-dynamic_int8-distill-heads" for s in ("quantize", "evaluate-quantize")
                 for t in ("cls", "qa")}
    expected |= {"report"}
    # the ONNX exports of distill-heads (export.sources) and their evaluations
    expected |= {f"export@{t}-distill-heads" for t in ("cls", "qa")}
    expected |= {f"evaluate-export@{t}-{fmt}-distill-heads" for t in ("cls", "qa") for fmt in ("onnx", "onnx_int8")}
    assert rerun_set(repo) == expected

    # One branch for real (the rest of the set is the same DAG): distill and its evaluation run.
    target = "evaluate@cls-distill-heads"
    out = sh(repo, "dvc", "repro", target)
    assert ran(out) == {"distill@cls-heads", target}, out
    # The task view lists every variant's task metrics (changed or not: --all); the retimed speed is there
    # with --targets metrics/speed (a tiny model's accuracy may not move, its timings always do).
    diff = sh(repo, "dvc", "metrics", "diff", "HEAD", "--all")
    assert "metrics/eval/cls/distill-heads.json" in diff and "metrics/speed" not in diff
    assert "metrics/speed/cls/distill-heads.json" in sh(repo, "dvc", "metrics", "diff", "HEAD", "--targets",
                                                        "metrics/speed")

    sh(repo, "git", "checkout", "params.yaml")
    out = sh(repo, "dvc", "repro", target)
    assert ran(out) == set(), out
    assert {"distill@cls-heads", target} <= restored(out)  # restored from the run-cache
    assert sh(repo, "git", "status", "--porcelain", "dvc.lock").strip() == ""  # byte-identical artifacts


def test_push_pull_roundtrip_is_byte_identical(golden_repo, tmp_path):
    repo = work_copy(golden_repo, tmp_path / "repo", checkout=False)  # pushes from the shared cache
    remote = tmp_path / "remote"
    sh(repo, "dvc", "remote", "add", "-d", "local", str(remote))
    sh(repo, "git", "commit", "-qam", "remote")
    sh(repo, "dvc", "push")
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    sh(clone, "dvc", "pull")
    assert not (clone / ".dvc" / "config.local").exists()  # its own cache, filled from the remote only
    assert tree_hashes(clone, "models", "data") == tree_hashes(golden_repo, "models", "data")
    assert "up to date" in sh(clone, "dvc", "status").lower() or sh(clone, "dvc", "status").strip() == ""


def test_prepare_param_reruns_everything(golden_repo, tmp_path):
    """The generator seed makes every stage that reads generated data stale: those ``dvc status`` lists and
    everything downstream of them. The tokenizer stage does not read the seed, and base reads only the
    tokenizer, so both are rightly left alone. One prepare stage reruns for real and writes new data."""
    repo = work_copy(golden_repo, tmp_path / "repo")
    set_param(repo, "prepare.seed", 1)
    assert rerun_set(repo) == all_stages(repo) - {"tokenizer", "base"}
    tokenizer, data = tree_hashes(repo, "data/tokenizer"), tree_hashes(repo, "data/cls")
    out = sh(repo, "dvc", "repro", "--single-item", "prepare@cls")
    assert ran(out) == {"prepare@cls"} and tree_hashes(repo, "data/cls") != data
    assert tree_hashes(repo, "data/tokenizer") == tokenizer == tree_hashes(golden_repo, "data/tokenizer")


def test_family_switch_reruns_every_stage_but_the_data_stages(golden_repo, tmp_path):
    """``model.type: roberta`` (and the teachers'): every stage that builds, reads or evaluates a model is stale;
    the tokenizer and the prepared data do not read the family, so they stay as they are (nothing runs here;
    tests/test_e2e_family.py runs the RoBERTa pipeline)."""
    repo = work_copy(golden_repo, tmp_path / "repo")

    def roberta(params: dict) -> None:
        params["model"]["type"] = "roberta"
        for task in params["teacher"]:
            params["teacher"][task]["arch"]["type"] = "roberta"

    edit_yaml(repo / "params.yaml", roberta)
    data = {s for s in all_stages(repo) if s == "tokenizer" or s.startswith("prepare@")}
    assert data and rerun_set(repo) == all_stages(repo) - data
