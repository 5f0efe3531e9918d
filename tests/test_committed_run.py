"""The committed run agrees with the pipeline: ``dvc.lock`` holds exactly the stages ``dvc.yaml`` defines (a
stale entry of a removed stage, or a stage never run, is an error), and ``metrics/eval`` holds exactly the
variants the evaluate stages write."""

from __future__ import annotations

import yaml
from dvc.repo import Repo

from tools.code_deps import ROOT


def stage_names() -> set[str]:
    with Repo(str(ROOT)) as dvc:
        return {stage.addressing for stage in dvc.index.stages}


def locked(lock: dict) -> set[str]:
    return set(lock["stages"])


def evaluated_files(lock: dict) -> set[str]:
    """The ``metrics/eval/<task>/<variant>.json`` files the locked evaluate stages wrote."""
    return {out["path"] for entry in lock["stages"].values() for out in entry.get("outs", [])
            if out["path"].startswith("metrics/eval/")}


def test_the_lock_holds_exactly_the_pipelines_stages():
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())
    stages = stage_names()
    stale, missing = sorted(locked(lock) - stages), sorted(stages - locked(lock))
    assert not stale, f"dvc.lock entries of stages dvc.yaml no longer has: {stale}"
    assert not missing, f"stages of dvc.yaml the committed run did not run: {missing}"


def test_committed_eval_files_are_the_locked_ones():
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())
    on_disk = {str(p.relative_to(ROOT)) for p in (ROOT / "metrics" / "eval").rglob("*.json")}
    assert on_disk == evaluated_files(lock)


def test_a_stale_entry_is_found():
    lock = {"stages": {"prune@cls-gradual": {"outs": [{"path": "metrics/eval/cls/prune-gradual.json"}]}}}
    assert "prune@cls-gradual" in locked(lock) - stage_names()
    assert evaluated_files(lock) == {"metrics/eval/cls/prune-gradual.json"}
