"""``prune.sweep`` and ``quantize.sources`` as DVC expands them, in a temporary copy of the repository.

Three sweep points and two quantized sources are set in the copy's ``params.yaml``; every stage output is
replaced by a placeholder and committed (as in ``test_blast_radius.py``), so ``dvc status`` starts clean
without running anything. Checked: the branches exist with their method's file, params and paths; each sweep
or quantized stage is its base stage (``prune``, ``distill``, ``evaluate``) with the variant renamed; editing one
point's value reruns that branch only; a method file reruns its own points only.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from clean_copy import clean_copy
from golden import rerun_after_editing, rerun_set, sh
from placeholders import commit_placeholders

pytestmark = pytest.mark.e2e

TASKS = ("cls", "qa")
POINTS = [{"method": "magnitude", "value": 0.5}, {"method": "magnitude", "value": 0.9}, {"method": "heads", "value": 1}]
SOURCES = ["distill-heads", "distill-magnitude-0.9"]


def edit_params(repo: Path, fn) -> str:
    """Apply ``fn`` to the copy's params; returns the previous text (to restore)."""
    path = repo / "params.yaml"
    before = path.read_text()
    data = yaml.safe_load(before)
    fn(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return before


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = clean_copy(tmp_path_factory.mktemp("sweep") / "repo")
    sh(repo, "git", "init", "-q")
    edit_params(repo, lambda d: (d["prune"].update(sweep=POINTS), d["quantize"].update(sources=SOURCES)))
    return commit_placeholders(repo)


def stages(repo: Path) -> dict[str, dict]:
    """Every stage as ``{name: {"cmd", "deps", "params", "outs"}}`` (paths as written in dvc.yaml)."""
    from dvc.repo import Repo

    out = {}
    with Repo(str(repo)) as dvc:
        for s in dvc.index.stages:
            params = set().union(*(d.params for d in s.deps if d.__class__.__name__ == "ParamsDependency"))
            deps = {str(Path(d.def_path)) for d in s.deps if d.__class__.__name__ != "ParamsDependency"}
            outs = {str(Path(o.def_path)) for o in s.outs}
            out[s.name] = {"cmd": s.cmd, "deps": deps, "params": params, "outs": outs}
    return out


def renamed(stage: dict, old: str, new: str, extra_cmd: tuple[str, str] | None = None) -> dict:
    """``stage`` with every path/command occurrence of ``old`` replaced by ``new`` (and ``extra_cmd`` applied)."""
    cmd = stage["cmd"].replace(old, new)
    if extra_cmd:
        cmd = cmd.replace(*extra_cmd)
    return {"cmd": cmd, "params": stage["params"], "deps": {d.replace(old, new) for d in stage["deps"]},
            "outs": {o.replace(old, new) for o in stage["outs"]}}


def test_points_and_sources_expand_into_branches(repo):
    every = stages(repo)
    for t in TASKS:
        for i, p in enumerate(POINTS):
            m, v = p["method"], p["value"]
            prune = every[f"prune-sweep@{t}-point{i}"]
            assert prune["outs"] == {f"models/{t}/prune-{m}-{v}", f"metrics/train/prune/{t}-{m}-{v}"}
            assert f"--method {m} --target {v} " in prune["cmd"]
            methods = {d for d in prune["deps"] if d.startswith("src/pipeline/prune/") and Path(d).stem in
                       {q["method"] for q in POINTS} | {"gradual", "ffn"}}
            assert methods == {f"src/pipeline/prune/{m}.py"}  # its own method's file, no other's
            assert prune["params"] == {f"tasks.{t}", f"prune.{m}", "launch"}
            assert f"models/{t}/distill-{m}-{v}" in every[f"distill-sweep@{t}-point{i}"]["outs"]
            for kind in ("prune", "distill"):
                evaluate = every[f"evaluate-sweep@{t}-{kind}-point{i}"]
                assert f"models/{t}/{kind}-{m}-{v}" in evaluate["deps"]
        for source in SOURCES:
            name = f"dynamic_int8-{source}"
            assert every[f"quantize@{t}-{name}"]["outs"] == {f"models/{t}/quantize-{name}"}
            assert f"models/{t}/{source}" in every[f"quantize@{t}-{name}"]["deps"]
            assert f"models/{t}/quantize-{name}" in every[f"evaluate-quantize@{t}-{name}"]["deps"]


def test_sweep_and_quantized_stages_mirror_their_base_stages(repo):
    """What prune, distill and evaluate declare, their sweep/quantized/exported copies declare too (only the
    variant's name differs), so an edit to a base stage that is not copied fails here."""
    every = stages(repo)
    for t in TASKS:
        for i, p in enumerate(POINTS):
            m, v = p["method"], p["value"]
            assert every[f"prune-sweep@{t}-point{i}"] == renamed(every[f"prune@{t}-{m}"], f"-{m}", f"-{m}-{v}",
                                                                   (f"--method {m} ", f"--method {m} --target {v} "))
            assert every[f"distill-sweep@{t}-point{i}"] == renamed(every[f"distill@{t}-{m}"], f"-{m}", f"-{m}-{v}")
            for kind in ("prune", "distill"):
                assert every[f"evaluate-sweep@{t}-{kind}-point{i}"] == renamed(
                    every[f"evaluate@{t}-{kind}-{m}"], f"/{kind}-{m}", f"/{kind}-{m}-{v}")
        assert every[f"evaluate-quantize@{t}-dynamic_int8-distill-heads"] == renamed(
            every[f"evaluate@{t}-distill-heads"], "/distill-heads", "/quantize-dynamic_int8-distill-heads")
        for fmt in ("onnx", "onnx_int8"):  # the ONNX exports of export.sources (distill-heads among them)
            assert every[f"evaluate-export@{t}-{fmt}-distill-heads"] == renamed(
                every[f"evaluate@{t}-distill-heads"], "/distill-heads", f"/{fmt}-distill-heads")


def branch(i: int) -> set[str]:
    return {s for t in TASKS for s in (f"prune-sweep@{t}-point{i}", f"distill-sweep@{t}-point{i}",
                                       f"evaluate-sweep@{t}-prune-point{i}", f"evaluate-sweep@{t}-distill-point{i}")}


def test_editing_one_value_reruns_only_its_branch(repo):
    before = edit_params(repo, lambda d: d["prune"]["sweep"][0].update(value=0.4))
    try:
        assert rerun_set(repo) == branch(0) | {"report"}
    finally:
        (repo / "params.yaml").write_text(before)
    assert rerun_set(repo) == set()


def test_a_method_file_reruns_its_own_points_only(repo):
    changed = rerun_after_editing(repo, "src/pipeline/prune/heads.py")
    heads = {s for t in TASKS for s in (f"prune@{t}-heads", f"distill@{t}-heads", f"evaluate@{t}-prune-heads",
                                        f"evaluate@{t}-distill-heads", f"quantize@{t}-dynamic_int8-distill-heads",
                                        f"evaluate-quantize@{t}-dynamic_int8-distill-heads", f"export@{t}-distill-heads",
                                        f"evaluate-export@{t}-onnx-distill-heads",
                                        f"evaluate-export@{t}-onnx_int8-distill-heads")}
    assert changed == heads | branch(2) | {"report"}
