"""The recipes for adding a plug-in (docs/architecture.md), followed in a temporary copy of the repository.

A pruning method: one new file in ``src/pipeline/prune/``, its section in ``params.yaml`` and its name in
``dvc.in.yaml``'s ``vars`` (then ``python -m tools.dvc_yaml``) are all it takes: the stage finds the method by
name, the consistency tests still pass, DVC makes the new branch depend on the new file, and the prune stage runs
it (end-to-end tests, ``-m e2e``).

A model family, a quantization scheme and a task type: one new file each (plus the scheme's ``quantize.<name>``
section); the registries find them by name, the code deps of the stages follow, and each works (a quick test,
one Python process in a copy of ``src/``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from ruamel.yaml import YAML
from transformers import BertForSequenceClassification

from clean_copy import ROOT, clean_copy
from pipeline.core.files import atomic_dir
from pipeline.models.store import save_model

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
    """The three steps of docs/architecture.md, "How to add a plug-in" (a pruning method)."""
    (repo / "src" / "pipeline" / "prune" / "every_other.py").write_text(METHOD)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["prune"]["every_other"] = {"offset": 1}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    source = YAML()  # round trip: the anchor of variants (the report stage's copy) and the comments kept
    source.indent(mapping=2, sequence=4, offset=2)
    source.width = 4096
    dvc = source.load((repo / "dvc.in.yaml").read_text())
    for entry in dvc["vars"]:
        if "prune_methods" in entry:
            entry["prune_methods"].append("every_other")
        if "variants" in entry:
            entry["variants"] += ["prune-every_other", "distill-every_other"]
    with (repo / "dvc.in.yaml").open("w") as f:
        source.dump(dvc, f)
    proc = subprocess.run([sys.executable, "-m", "tools.dvc_yaml"], cwd=repo, env=env(repo), capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = clean_copy(tmp_path_factory.mktemp("recipe") / "repo")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    follow_the_recipe(repo)
    return repo


def env(repo: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(repo / "src"), "OMP_NUM_THREADS": "1"}


@pytest.mark.e2e
def test_dvc_gives_the_new_branch_its_own_file(repo):
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc:
        stages = {s.name: s for s in dvc.index.stages}
    for task in ("cls", "qa"):
        prune = stages[f"prune@{task}-every_other"]
        assert "src/pipeline/prune/every_other.py" in {str(Path(d.def_path)) for d in prune.deps}
        assert f"evaluate@{task}-distill-every_other" in stages
    assert "src/pipeline/prune/every_other.py" not in {str(Path(d.def_path)) for d in stages["prune@cls-heads"].deps}


@pytest.mark.e2e
def test_the_consistency_tests_still_pass(repo):
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_params.py"],
                          cwd=repo, env=env(repo), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]


@pytest.mark.e2e
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


# ------------------------------------------------------------------------- the other plug-in kinds: one file each
FAMILY = '''"""Model family ``megatron-bert``: BERT's layer layout with pre-norm layers (a recipe test)."""

from transformers import (MegatronBertConfig, MegatronBertForMaskedLM, MegatronBertForQuestionAnswering,
                          MegatronBertForSequenceClassification)

from pipeline.models.families import register
from pipeline.models.families.bert import BertLayout


@register
class MegatronBert(BertLayout):
    model_type = "megatron-bert"
    config_class = MegatronBertConfig
    attention = "eager"  # no sdpa in transformers for this family
    heads = {"mlm": MegatronBertForMaskedLM, "classification": MegatronBertForSequenceClassification,
             "qa": MegatronBertForQuestionAnswering}
'''

SCHEME = '''"""Quantization scheme ``identity``: the float32 weights stored as they are (a recipe test)."""

from pipeline.models.build import load_state_
from pipeline.models.formats import Scheme
from pipeline.quantize import NoParams, register


def quantize(model, params):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, {"kept": "float32"}


def load(model, tensors, description, source):
    load_state_(model, tensors, source)
    return model


register(Scheme("identity", NoParams, quantize=quantize, load=load, float_state=lambda t, d, s: dict(t)), __name__)
'''

TASK = '''"""Task type ``pair_classification``: the classification task under its own type name (a recipe test)."""

from pipeline.tasks import register
from pipeline.tasks.classification import ClassificationTask


@register("pair_classification")
class PairClassificationTask(ClassificationTask):
    """Sentence pairs: classification's data handling, head and metrics."""
'''

# Run in the copy: every registry finds its new entry, the entry works, and the stages' code deps include it.
CHECK = '''
import json, sys, tempfile
from pathlib import Path

import torch
import yaml

from tools import code_deps
import pipeline
from pipeline import schema, tasks
from pipeline.artifacts import load_model
from pipeline.config import loader
from pipeline.data.vocab import build_tokenizer
from pipeline.models.build import ArchParams, init_model
from pipeline.models.families import FAMILIES
from pipeline.models.store import save_model
from pipeline.quantize import SCHEMES, quantize_model
from pipeline.tasks import TYPES, TaskParams

out = {"pipeline": pipeline.__file__, "families": FAMILIES.names(), "schemes": SCHEMES.names(), "types": TYPES.names()}
tmp = Path(tempfile.mkdtemp())
vocab = len(build_tokenizer(tmp / "tok"))
arch = ArchParams(type="megatron-bert", hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, max_position_embeddings=64)
model = init_model(arch, "classification", vocab, 0)
out["model"] = type(model).__name__
out["prunable"] = len(FAMILIES.get("megatron-bert").prunable_linears(model))
tensors, description = quantize_model(model, "identity")
save_model(tmp / "q", model, tmp / "tok", {"stage": "quantize", "head": "classification", "format": "identity",
                                           "quantization": description})
loaded, meta = load_model(tmp / "q", "classification")
out["round_trip"] = all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())
params = yaml.safe_load(Path("params.yaml").read_text())
params["quantize"]["schemes"].append("identity")
params["quantize"]["identity"] = {}
params["tasks"]["pairs"] = {"type": "pair_classification", "max_length": 64, "num_labels": 3}
Path(tmp / "params.yaml").write_text(yaml.safe_dump(params))
schema.check_schemes(params["quantize"]["schemes"], params)
(pairs,) = loader.load({"tasks.pairs": TaskParams}, file=tmp / "params.yaml")
out["task_params"], out["task"] = type(pairs).__name__, type(tasks.get(pairs)).__name__
out["finetune_deps"] = sorted(code_deps.expected_code_deps("stages/finetune.py", []))
out["quantize_deps"] = sorted(code_deps.expected_code_deps("stages/quantize.py",
                                                           ["src/pipeline/quantize/${item.scheme}.py"]))
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def plugins(tmp_path_factory) -> dict:
    """The three new files written into a copy of the code, and what :data:`CHECK` found there."""
    copy = tmp_path_factory.mktemp("plugins")
    for name in ("src", "stages", "tests", "tools"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copyfile(ROOT / "params.yaml", copy / "params.yaml")
    (copy / "src" / "pipeline" / "models" / "families" / "megatron_bert.py").write_text(FAMILY)
    (copy / "src" / "pipeline" / "quantize" / "identity.py").write_text(SCHEME)
    (copy / "src" / "pipeline" / "tasks" / "pair_classification.py").write_text(TASK)
    proc = subprocess.run([sys.executable, "-c", CHECK], cwd=copy, env=env(copy), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["pipeline"].startswith(str(copy))  # the copy's code, not the installed one
    return found


def test_a_family_is_one_file(plugins):
    assert "megatron-bert" in plugins["families"] and "bert" in plugins["families"]
    assert plugins["model"] == "MegatronBertForSequenceClassification"
    assert plugins["prunable"] == 2 * 6  # query, key, value, attention output, FFN in and out per layer
    assert "src/pipeline/models/families/megatron_bert.py" in plugins["finetune_deps"]  # every model-loading stage


def test_a_scheme_is_one_file_and_its_section(plugins):
    assert "identity" in plugins["schemes"] and plugins["round_trip"]
    # picked by a stage argument: the quantize stage's deps template the scheme's file, so no other branch
    # depends on the new one
    assert "src/pipeline/quantize/${item.scheme}.py" in plugins["quantize_deps"]
    assert "src/pipeline/quantize/identity.py" not in plugins["quantize_deps"]


def test_a_task_type_is_one_file(plugins):
    assert plugins["types"] == ["classification", "pair_classification", "qa"]
    assert (plugins["task_params"], plugins["task"]) == ("ClassificationParams", "PairClassificationTask")
    assert "src/pipeline/tasks/pair_classification.py" in plugins["finetune_deps"]  # picked by params: every one
