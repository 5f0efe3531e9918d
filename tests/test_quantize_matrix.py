"""``quantize.schemes`` x ``quantize.sources`` as one DVC matrix: the variant names, the stages DVC expands (in a
temporary copy of dvc.yaml and params.yaml, nothing run) with each scheme's own file and params only, and the
checks on the list."""

from __future__ import annotations

import shutil

import pytest
import yaml

from tools.code_deps import ROOT
from pipeline import schema
from pipeline.core.errors import PipelineError
from pipeline.report.collect import current_variants, quantized_variant

SCHEMES, SOURCES = ["dynamic_int8", "weight_int8"], ["distill-heads", "prune-ffn"]


def test_quantized_variants_are_named_scheme_then_source():
    assert quantized_variant("weight_int4", "distill-heads") == "quantize-weight_int4-distill-heads"
    names = current_variants(["finetune"], (SCHEMES, SOURCES), [], [])
    assert names == ["finetune", "quantize-dynamic_int8-distill-heads", "quantize-dynamic_int8-prune-ffn",
                     "quantize-weight_int8-distill-heads", "quantize-weight_int8-prune-ffn"]
    assert current_variants(["finetune"], ([], SOURCES), [], []) == ["finetune"]  # no scheme: nothing quantized


def test_the_default_quantizes_distill_heads_with_dynamic_int8():
    quantize = yaml.safe_load((ROOT / "params.yaml").read_text())["quantize"]
    assert (quantize["schemes"], quantize["sources"]) == (["dynamic_int8"], ["distill-heads"])
    assert "scheme" not in quantize


@pytest.fixture(scope="module")
def expanded(tmp_path_factory) -> dict[str, dict]:
    """The quantize and evaluate-quantize stages DVC makes of two schemes x two sources x the shipped tasks."""
    from dvc.repo import Repo

    root = tmp_path_factory.mktemp("matrix")
    shutil.copy(ROOT / "dvc.yaml", root / "dvc.yaml")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["quantize"].update(schemes=SCHEMES, sources=SOURCES)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    Repo.init(str(root), no_scm=True).close()
    out = {}
    with Repo(str(root)) as repo:
        for s in repo.index.stages:
            if s.name.startswith(("quantize@", "evaluate-quantize@")):
                out[s.name] = {"cmd": s.cmd, "params": set().union(*(d.params for d in s.deps if hasattr(d, "params"))),
                               "deps": {d.def_path for d in s.deps if not hasattr(d, "params")},
                               "outs": {o.def_path for o in s.outs}}
    return out


def test_the_matrix_makes_one_stage_per_task_scheme_and_source(expanded):
    tasks = list(yaml.safe_load((ROOT / "params.yaml").read_text())["tasks"])
    names = {f"{t}-{q}-{s}" for t in tasks for q in SCHEMES for s in SOURCES}
    assert set(expanded) == {f"{kind}@{n}" for kind in ("quantize", "evaluate-quantize") for n in names}
    for t in tasks:
        for q in SCHEMES:
            for s in SOURCES:
                stage, variant = expanded[f"quantize@{t}-{q}-{s}"], quantized_variant(q, s)
                assert f"--scheme {q} " in stage["cmd"] and stage["outs"] == {f"models/{t}/{variant}"}
                assert f"models/{t}/{s}" in stage["deps"]
                evaluation = expanded[f"evaluate-quantize@{t}-{q}-{s}"]
                assert f"models/{t}/{variant}" in evaluation["deps"]
                assert f"metrics/eval/{t}/{variant}.json" in evaluation["outs"]


def test_a_scheme_stage_declares_only_its_own_file_and_knobs(expanded):
    """So editing ``quantize.weight_int8.group_size`` (or ``weight_int8.py``) reruns the weight_int8 stages and
    nothing of dynamic_int8 (``test_params.py`` checks each stage reads exactly what it declares)."""
    for name, stage in expanded.items():
        if not name.startswith("quantize@"):
            continue
        scheme = next(q for q in SCHEMES if f"-{q}-" in name)
        other = next(q for q in SCHEMES if q != scheme)
        assert f"quantize.{scheme}" in stage["params"] and f"quantize.{other}" not in stage["params"]
        assert not {p for p in stage["params"] if p in ("quantize", "quantize.schemes")}
        assert f"src/pipeline/quantize/{scheme}.py" in stage["deps"]
        assert f"src/pipeline/quantize/{other}.py" not in stage["deps"]


@pytest.mark.parametrize("schemes, message", [
    (["int3"], "'quantize.schemes[0]': unknown quantization scheme 'int3'"),
    (["dynamic_int8", "dynamic_int8"], "'quantize.schemes[1]': 'dynamic_int8' is listed twice"),
    (["fp16"], "'quantize.schemes[0]': 'fp16' has no 'quantize.fp16' section"),
])
def test_bad_scheme_lists_are_named(tmp_path, schemes, message):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["quantize"]["schemes"] = schemes
    params["quantize"].pop("fp16")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.raises(PipelineError, match=message.replace("[", r"\[").replace("]", r"\]")):
        schema.check_file(tmp_path / "params.yaml")
