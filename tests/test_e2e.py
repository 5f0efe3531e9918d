"""End to end: ``dvc repro`` of the whole pipeline in a temporary copy of the repository.

One module-scoped run on tiny params, then the caching contract: a distill-only param change reruns exactly
distill and its downstream, reverting restores from the run-cache without running anything, metrics diff
shows the change, a prepare change makes every stage that reads the data stale, and push/pull through a
local remote gives byte-identical artifacts in a fresh clone.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from clean_copy import clean_copy, copy_ignore  # noqa: F401 (copy_ignore: used by test_remotes)
from import_closure import ROOT

pytestmark = pytest.mark.e2e

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "PYTHONPATH": str(ROOT / "src"),
    "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
}


# Pruning methods the end-to-end run compares: one that trains while pruning (and is stored compactly)
# and one that changes shapes; the others are covered by unit tests. Keeps CI well under 15 minutes.
E2E_METHODS = ["gradual", "heads"]


def fewer_methods(dvc_yaml: Path) -> None:
    """Restrict the prune/distill/evaluate matrices of a copied dvc.yaml to :data:`E2E_METHODS`."""
    data = yaml.safe_load(dvc_yaml.read_text())
    for entry in data["vars"]:
        if "prune_methods" in entry:
            entry["prune_methods"] = E2E_METHODS
        if "variants" in entry:  # in place: the report stage's vars alias the same list
            entry["variants"][:] = [v for v in entry["variants"]
                                    if not v.startswith(("prune-", "distill-")) or v.split("-", 1)[1] in E2E_METHODS]
    dvc_yaml.write_text(yaml.safe_dump(data, sort_keys=False))


def tiny(params: dict) -> dict:
    """Shrink the embedded default so the whole pipeline runs in about two minutes on 2 cores."""
    for name, ds in params["prepare"]["datasets"].items():
        ds["train_size"], ds["validation_size"] = (300, 60) if name != "corpus" else (400, 60)
    params["model"].update(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    params["pretrain"]["train"]["epochs"] = 1
    for task in params["tasks"]:
        params["finetune"][task]["epochs"] = 1
        params["teacher"][task]["arch"].update(hidden_size=48, num_hidden_layers=2, num_attention_heads=4,
                                               intermediate_size=96)
        params["teacher"][task]["train"]["epochs"] = 1
        params["distill"]["train"][task]["epochs"] = 1
    params["evaluate"]["latency_repeats"] = 3
    params["evaluate"]["memory"] = False  # measured by tests/test_memory.py; here it would cost minutes per run
    return params


def env_for(cwd: Path, base: dict | None = None) -> dict:
    """The environment of a command in a copy of the repository: that copy's own ``src`` on the path (the code
    DVC hashed as the stages' deps), not this checkout's."""
    env = dict(base or ENV)
    if (Path(cwd) / "src" / "pipeline").is_dir():
        env["PYTHONPATH"] = str(Path(cwd) / "src")
    return env


def sh(cwd: Path, *cmd: str, check: bool = True) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env_for(cwd), capture_output=True, text=True)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr


def ran(output: str) -> set[str]:
    """Stages that actually executed their command in a ``dvc repro`` output."""
    return set(re.findall(r"Running stage '([^']+)'", output))


def tree_hashes(root: Path, *dirs: str) -> dict[str, str]:
    """Hash of every file the project wrote under ``dirs`` of ``root``. DVC's own ``.gitignore`` files are left out:
    DVC appends their lines in the order it happened to run independent stages, so two clones may differ there."""
    from pipeline.core.files import file_hash

    return {str(p.relative_to(root)): file_hash(p) for d in dirs for p in sorted((root / d).rglob("*"))
            if p.is_file() and p.name != ".gitignore"}


def set_param(repo: Path, dotted: str, value) -> None:
    path = repo / "params.yaml"
    data = yaml.safe_load(path.read_text())
    node = data
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("e2e") / "repo"
    clean_copy(path)
    params = yaml.safe_load((path / "params.yaml").read_text())
    (path / "params.yaml").write_text(yaml.safe_dump(tiny(params), sort_keys=False))
    fewer_methods(path / "dvc.yaml")
    sh(path, "git", "init", "-q")
    sh(path, "git", "add", "-A")
    sh(path, "git", "commit", "-qm", "init")
    out = sh(path, "dvc", "repro")
    (path / "first_repro.log").write_text(out)
    sh(path, "git", "add", "-A")
    sh(path, "git", "commit", "-qm", "first run")
    return path


def all_stages(repo: Path) -> set[str]:
    """Every stage name as ``dvc repro`` prints it (run inside the repo: DVC's addressing is cwd-relative)."""
    return set(sh(repo, "dvc", "stage", "list", "--name-only").split())


def test_first_repro_runs_every_stage_and_artifacts_reload(repo):
    assert ran((repo / "first_repro.log").read_text()) == all_stages(repo)
    from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification

    from pipeline.models.store import load_model

    for task, auto in (("cls", AutoModelForSequenceClassification), ("qa", AutoModelForQuestionAnswering)):
        methods = prune_methods(repo)
        for variant in ("finetune", "teacher", "quantize-distill-heads",
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
    gradual = evaluation(repo, "cls", "prune-gradual")
    assert gradual["nonzero_params"] < gradual["params"]
    dense = evaluation(repo, "cls", "finetune")
    assert gradual["size_bytes"] < dense["size_bytes"]  # compact storage follows sparsity
    summary = json.loads((repo / "reports" / "summary.json").read_text())
    assert {r["variant"] for r in summary["cls"]} >= {"finetune", "quantize-distill-heads"}


def evaluation(repo: Path, task: str, variant: str) -> dict:
    """A variant's task metrics, facts and speed (the evaluate stage's three flat files) in one dict."""
    return {k: v for kind in ("eval", "facts", "speed")
            for k, v in json.loads((repo / "metrics" / kind / task / f"{variant}.json").read_text()).items()}


def prune_methods(repo: Path) -> list[str]:
    dvc_vars = yaml.safe_load((repo / "dvc.yaml").read_text())["vars"]
    return next(v["prune_methods"] for v in dvc_vars if "prune_methods" in v)


def test_distill_param_reruns_exactly_distill_and_downstream_then_revert_restores(repo):
    methods = prune_methods(repo)
    set_param(repo, "distill.kd.temperature", 3.0)
    status = sh(repo, "dvc", "status")
    changed = set(re.findall(r"^(\S+):\s*$", status, re.M))
    assert changed == {f"distill@{t}-{m}" for t in ("cls", "qa") for m in methods}
    out = sh(repo, "dvc", "repro")
    expected = {f"distill@{t}-{m}" for t in ("cls", "qa") for m in methods}
    expected |= {f"evaluate@{t}-distill-{m}" for t in ("cls", "qa") for m in methods}
    expected |= {f"{s}@{t}-distill-heads" for s in ("quantize", "evaluate-quantize") for t in ("cls", "qa")} | {"report"}
    # the ONNX exports of distill-heads (export.sources) and their evaluations
    expected |= {f"export@{t}-distill-heads" for t in ("cls", "qa")}
    expected |= {f"evaluate-export@{t}-{fmt}-distill-heads" for t in ("cls", "qa") for fmt in ("onnx", "onnx_int8")}
    assert ran(out) == expected

    # The task view lists every variant's task metrics (changed or not: --all); the retimed speed is there
    # with --targets metrics/speed (a tiny model's accuracy may not move, its timings always do).
    diff = sh(repo, "dvc", "metrics", "diff", "HEAD", "--all")
    assert "metrics/eval/cls/distill-heads.json" in diff and "metrics/speed" not in diff
    assert "metrics/speed/cls/distill-heads.json" in sh(repo, "dvc", "metrics", "diff", "HEAD", "--targets",
                                                        "metrics/speed")

    sh(repo, "git", "checkout", "params.yaml")
    out = sh(repo, "dvc", "repro")
    assert ran(out) == set(), out
    assert "is cached - skipping run" in out  # restored from the run-cache
    assert sh(repo, "git", "status", "--porcelain", "dvc.lock").strip() == ""  # byte-identical artifacts


def test_push_pull_roundtrip_is_byte_identical(repo, tmp_path):
    remote = tmp_path / "remote"
    sh(repo, "dvc", "remote", "add", "-d", "local", str(remote))
    sh(repo, "git", "commit", "-qam", "remote")
    sh(repo, "dvc", "push")
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    sh(clone, "dvc", "pull")
    assert tree_hashes(clone, "models", "data") == tree_hashes(repo, "models", "data")
    assert "up to date" in sh(clone, "dvc", "status").lower() or sh(clone, "dvc", "status").strip() == ""


def test_prepare_param_reruns_everything(repo):
    """The generator seed makes every stage that reads generated data stale: those ``dvc status`` lists and
    everything downstream of them. The tokenizer stage does not read the seed, and base reads only the
    tokenizer, so both are rightly left alone. One prepare stage reruns for real and writes new data. (A full
    second ``dvc repro`` here cost 7.5 minutes of the suite and showed the same set.)"""
    from test_multitask import rerun_after_setting

    assert rerun_after_setting(repo, "prepare.seed", 1) == all_stages(repo) - {"tokenizer", "base"}
    tokenizer, data = tree_hashes(repo, "data/tokenizer"), tree_hashes(repo, "data/cls")
    set_param(repo, "prepare.seed", 1)
    out = sh(repo, "dvc", "repro", "--single-item", "prepare@cls")
    assert ran(out) == {"prepare@cls"} and tree_hashes(repo, "data/cls") != data
    assert tree_hashes(repo, "data/tokenizer") == tokenizer
    sh(repo, "git", "checkout", "params.yaml", "dvc.lock")
    sh(repo, "dvc", "checkout", "--quiet")
