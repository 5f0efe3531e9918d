"""Lineage: the report shows only evaluations of the current pipeline and names what it left out.

The story of issue 15 item 8: a tiny default run left metrics files for every variant; a user then ran a
real model on real data and reevaluated a few cls variants only. The stale files must not reach the report.
"""

import json
import shutil

import pytest

import yaml
from evaluation_files import make_inputs, read, report_argv, write_evaluation
from tools.code_deps import ROOT
from pipeline.core.errors import PipelineError
from pipeline.core.files import dir_hash
from pipeline.evaluation.lineage import hashes, lineage, mismatch, tokenizer_hash
from pipeline.report.collect import Pipeline, collect
from test_stage_errors import run_stage

VARIANTS = ["finetune", "prune-heads", "distill-heads"]


def row(metric: str, value: float, size: int) -> dict:
    return {"primary_metric": metric, metric: value, "size_bytes": size, "params": 1000, "nonzero_params": 900,
            "latency_ms_p50": 2.0, "speedup": 1.0}


DETAILS = {"artifact": {"stage": "x", "format": "dense"}, "layers": [{"layer": 0, "sparsity": 0.1}]}


def only_cls(root):
    """The current pipeline has the task ``cls`` only (params.yaml in ``root``, the current directory)."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["tasks"] = {"cls": params["tasks"]["cls"]}
    (root / "params.yaml").write_text(yaml.safe_dump(params))


@pytest.fixture(autouse=True)
def _workdir(tmp_path, monkeypatch):
    """The shipped params.yaml (its tasks: cls, qa) and prepare counts in the current directory."""
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "metrics" / "prepare").mkdir(parents=True)
    for task in ("cls", "qa"):
        (tmp_path / "metrics" / "prepare" / f"{task}.json").write_text(json.dumps({task: {"validation": {"rows": 4}}}))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def two_runs(tmp_path):
    """Run 1 evaluated every variant of cls and qa (plus a variant no longer in the pipeline); run 2 changed the
    cls data, the tokenizer and the cls artifacts, and reevaluated cls finetune and prune-heads only."""
    for task, metric in (("cls", "accuracy"), ("qa", "f1")):
        make_inputs(tmp_path, task, [*VARIANTS, "prune-movement"], run="tiny")
        for n, variant in enumerate([*VARIANTS, "prune-movement"]):
            write_evaluation(tmp_path, task, variant, row(metric, 0.5 + n / 10, 1000), DETAILS)
    make_inputs(tmp_path, "cls", ["finetune", "prune-heads"], run="real")
    fresh = {v: write_evaluation(tmp_path, "cls", v, row("accuracy", 0.9, 400_000_000), DETAILS)
             for v in ("finetune", "prune-heads")}
    return tmp_path, fresh


def test_lineage_records_what_the_numbers_come_from(tmp_path):
    make_inputs(tmp_path, "cls", ["prune-heads"])
    model, data, base = (tmp_path / "models" / "cls" / "prune-heads", tmp_path / "data" / "cls",
                         tmp_path / "models" / "cls" / "finetune")
    meta = {"stage": "prune", "method": "heads", "params": {"keep_heads": 2}, "parents": {"models/x": "ab"}}
    records = lineage(model, meta, data, base, {"batch_size": 64})
    assert [r["role"] for r in records] == ["artifact", "data", "tokenizer", "baseline", "evaluate"]
    assert records[0] == {"role": "artifact", "path": str(model), "sha256": dir_hash(model), **meta}
    assert hashes(records) == {"artifact": dir_hash(model), "data": dir_hash(data),
                               "tokenizer": tokenizer_hash(model), "baseline": dir_hash(base), "evaluate": None}
    # the artifact's tokenizer files are those of data/tokenizer (copied byte for byte): same hash
    assert tokenizer_hash(model) == tokenizer_hash(tmp_path / "data" / "tokenizer")
    current = {"data": dir_hash(data), "baseline": dir_hash(base)}
    assert mismatch(records, current) is None
    assert mismatch(records, {**current, "data": "f" * 64}).startswith("data differs")
    assert mismatch({"accuracy": 1}, current).startswith("no lineage")
    assert mismatch(records[:2], current).startswith("no lineage")  # incomplete


def test_stale_files_from_another_run_are_left_out_and_named(two_runs, capsys):
    root, _ = two_runs
    code, err = run_stage("report", report_argv(root, VARIANTS), capsys)
    assert code == 0, err
    summary = json.loads((root / "reports" / "summary.json").read_text())
    assert set(summary) == {"cls"}  # qa: nothing of it matches the new tokenizer, so no qa card either
    assert {r["variant"] for r in summary["cls"]} == {"finetune", "prune-heads"}
    assert not (root / "reports" / "qa").exists()
    line = next(x for x in (root / "reports" / "summary.md").read_text().splitlines() if x.startswith("Left out:"))
    assert "of tasks not in dvc.yaml" not in line and "2 evaluation(s) of variants not in dvc.yaml (cls, qa;" in line
    assert "made from other data, tokenizer, baseline or artifacts (cls, qa; to clear: `dvc repro`)" in line
    md = (root / "reports" / "left_out.md").read_text()  # the list the line links
    lines = {tuple(c.strip() for c in line.strip("|").split("|")[:2]): line for line in md.splitlines()
             if line.startswith("| cls |") or line.startswith("| qa |")}
    assert "data differs" in lines[("cls", "distill-heads")]  # run 1's file, evaluated on the old data
    assert "not a variant of the current pipeline" in lines[("cls", "prune-movement")]
    for variant in VARIANTS:
        assert "tokenizer differs" in lines[("qa", variant)]  # qa data kept, the tokenizer changed
    card = (root / "reports" / "cls" / "MODEL_CARD.md").read_text()
    results, left = card.split("## Left out")
    assert "distill-heads" not in results and "prune-movement" not in results  # never mixed into the card
    assert "| cls | distill-heads | data differs" in left and "| qa |" not in left
    layers = (root / "reports" / "cls" / "data" / "layers.csv").read_text()
    assert "distill-heads" not in layers and "prune-heads" in layers


def test_an_artifact_or_baseline_changed_after_its_evaluation_is_left_out(two_runs):
    root, _ = two_runs
    pipeline = lambda: Pipeline(["cls"], VARIANTS, root / "data", root / "models")  # noqa: E731
    (root / "models" / "cls" / "prune-heads" / "model.safetensors").write_text("pruned again, not reevaluated")
    found = collect(root / "metrics", root / "metrics" / "details", pipeline())
    assert list(found.results["cls"].index) == ["finetune"]
    reasons = {x.variant: x.reason for x in found.left_out if x.task == "cls"}
    assert reasons["prune-heads"].startswith("artifact differs")
    assert {x.reason for x in found.left_out if x.task == "qa"} == {"not a task of the current pipeline (dvc.yaml)"}
    (root / "models" / "cls" / "finetune" / "model.safetensors").write_text("retrained baseline")
    with pytest.raises(PipelineError, match="no evaluation metrics of the current pipeline") as err:
        collect(root / "metrics", root / "metrics" / "details", pipeline())
    assert "baseline differs" in str(err.value)


def test_files_of_one_variant_from_different_evaluations_are_left_out(two_runs):
    root, _ = two_runs
    speed = root / "metrics" / "speed" / "cls" / "prune-heads.json"
    stale = read(speed) | {"lineage": read(root / "metrics" / "eval" / "qa" / "finetune.json")["lineage"]}
    speed.write_text(json.dumps(stale))
    (root / "metrics" / "facts" / "cls" / "finetune.json").unlink()
    with pytest.raises(PipelineError) as err:  # distill-heads is stale too: no cls variant is left
        collect(root / "metrics", root / "metrics" / "details",
                Pipeline(["cls"], VARIANTS, root / "data", root / "models"))
    assert "cls/prune-heads: its eval, facts, speed, details files come from different evaluations" in str(err.value)
    assert "metrics/facts/cls/finetune.json missing" in str(err.value)


def test_nothing_matching_is_refused_with_one_line_and_nothing_written(two_runs, capsys):
    root, _ = two_runs
    shutil.rmtree(root / "data" / "cls")
    make_inputs(root, "cls", [], run="third")  # new data again: even the fresh cls files are stale now
    only_cls(root)
    code, err = run_stage("report", report_argv(root, VARIANTS), capsys)
    assert code == 2 and len(err) == 1, err
    assert "no evaluation metrics of the current pipeline" in err[0] and "differs" in err[0]
    assert not (root / "reports").exists()
