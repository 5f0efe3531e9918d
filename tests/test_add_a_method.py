"""The recipe for adding a pruning method (docs/architecture.md), followed in a temporary copy of the repository.

One new file in ``src/pipeline/prune/``, its section in ``params.yaml`` and its name in ``dvc.yaml``'s
``vars`` are all it takes: the stage finds the method by name, the consistency tests still pass, DVC makes
the new branch depend on the new file, and the prune stage runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from transformers import BertForSequenceClassification

from clean_copy import clean_copy
from pipeline.core.files import atomic_dir
from pipeline.models.store import save_model

pytestmark = pytest.mark.e2e

METHOD = '''"""Pruning method ``every_other``: zero every second input column of each encoder Linear (a toy)."""

from dataclasses import dataclass

import torch

from pipeline.prune import PruneContext, register
from pipeline.prune.masks import apply_masks_, prunable_weights, sparsity_report


@dataclass
class EveryOtherParams:
    """Knobs of ``every_other`` (``prune.every_other``)."""

    offset: int = 0
    """First input column zeroed (0 or 1)."""


@register("every_other", EveryOtherParams, zeroing=True)
def every_other(model: torch.nn.Module, params: EveryOtherParams, context: PruneContext) -> dict:
    """Zero input columns ``offset, offset + 2, ...`` of every prunable weight."""
    masks = {}
    for name, weight in prunable_weights(model).items():
        mask = torch.ones_like(weight, dtype=torch.bool)
        mask[:, params.offset::2] = False
        masks[name] = mask
    apply_masks_(model, masks)
    return sparsity_report(model)
'''


def follow_the_recipe(repo: Path) -> None:
    """The three steps of docs/architecture.md, "How to add a method"."""
    (repo / "src" / "pipeline" / "prune" / "every_other.py").write_text(METHOD)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["prune"]["every_other"] = {"offset": 1}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc = yaml.safe_load((repo / "dvc.yaml").read_text())
    for entry in dvc["vars"]:
        if "prune_methods" in entry:
            entry["prune_methods"].append("every_other")
        if "variants" in entry:
            entry["variants"] += ["prune-every_other", "distill-every_other"]
    (repo / "dvc.yaml").write_text(yaml.safe_dump(dvc, sort_keys=False))


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = clean_copy(tmp_path_factory.mktemp("recipe") / "repo")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    follow_the_recipe(repo)
    return repo


def env(repo: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(repo / "src"), "OMP_NUM_THREADS": "1"}


def test_dvc_gives_the_new_branch_its_own_file(repo):
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc:
        stages = {s.name: s for s in dvc.index.stages}
    for task in ("cls", "qa"):
        prune = stages[f"prune@{task}-every_other"]
        assert "src/pipeline/prune/every_other.py" in {str(Path(d.def_path)) for d in prune.deps}
        assert f"evaluate@{task}-distill-every_other" in stages
    assert "src/pipeline/prune/every_other.py" not in {str(Path(d.def_path)) for d in stages["prune@cls-heads"].deps}


def test_the_consistency_tests_still_pass(repo):
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_params.py"],
                          cwd=repo, env=env(repo), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_the_prune_stage_runs_the_new_method(repo, tiny_config, tokenizer):
    tok = repo / "tok"
    tokenizer.save_pretrained(tok)
    torch.manual_seed(0)
    source = repo / "models" / "cls" / "finetune"
    with atomic_dir(source) as tmp:
        save_model(tmp, BertForSequenceClassification(tiny_config), tok,
                   {"stage": "finetune", "head": "classification", "format": "dense", "task": "cls"})
    data = repo / "data" / "cls"
    data.mkdir(parents=True)
    rows = [{"sentence": "the movie was good", "label": i % 2, "idx": i} for i in range(8)]
    for split in ("train", "validation"):  # the stage checks the task's data before pruning
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = repo / "models" / "cls" / "prune-every_other"
    proc = subprocess.run([sys.executable, "stages/prune.py", "--task", "cls", "--method", "every_other",
                           str(source), str(data), str(out)], cwd=repo, env=env(repo), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((out / "pipeline.json").read_text())
    assert meta["method"] == "every_other" and meta["params"]["every_other"] == {"offset": 1}
    assert meta["results"]["sparsity"] == pytest.approx(0.5)
    assert meta["storage"] == "compact"  # a zeroing method: stored compactly, as the registry says
