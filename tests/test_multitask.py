"""Several tasks in one pipeline: the task list lives in params.yaml only, the stages follow it, a data set change
reruns only its task, and the report's GLUE table."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from clean_copy import clean_copy
from tools.code_deps import ROOT
from golden import all_stages, rerun_set, sh
from placeholders import placeholder_copy

from pipeline.core.errors import PipelineError
from pipeline.report import glue_table
from pipeline.config.task_names import check_task_lists


def shipped() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def with_task(params: dict, name: str, like: str = "cls", **task) -> dict:
    """``params`` with a task ``name`` added: every per-task section copied from ``like``."""
    out = copy.deepcopy(params)
    out["prepare"]["datasets"][name] = copy.deepcopy(out["prepare"]["datasets"][like])
    out["tasks"][name] = {**copy.deepcopy(out["tasks"][like]), **task}
    for section in (out["finetune"], out["teacher"], out["distill"]["train"]):
        section[name] = copy.deepcopy(section[like])
    return out


# ----------------------------------------------------------------------------------------- the task list
def test_shipped_task_lists_agree():
    assert check_task_lists(shipped()) == ["cls", "qa"]
    assert check_task_lists(with_task(shipped(), "sst2", glue="sst2")) == ["cls", "qa", "sst2"]


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["finetune"].pop("qa"), "task 'qa' has no 'finetune.qa' section"),
    (lambda d: d["teacher"].update(mnli=d["teacher"]["cls"]), "'teacher.mnli' is no task (tasks: cls, qa)"),
    (lambda d: d["distill"]["train"].pop("cls"), "task 'cls' has no 'distill.train.cls' section"),
    (lambda d: d["prepare"]["datasets"].pop("qa"), "task 'qa' has no data set 'prepare.datasets.qa'"),
    (lambda d: d["prepare"]["datasets"].update(rte={"type": "classification", "source": "x"}),
     "data set 'prepare.datasets.rte' (type 'classification') is no task"),
    (lambda d: d["prepare"]["datasets"]["cls"].update(type="qa"),
     "'prepare.datasets.cls.type' is 'qa' but 'tasks.cls.type' is 'classification'"),
    (lambda d: d["prepare"]["datasets"]["cls"].update(glue="mnli"),
     "'prepare.datasets.cls.glue' is 'mnli' but 'tasks.cls.glue' is ''"),
    (lambda d: d["prepare"]["datasets"].pop("corpus"), "missing data set 'prepare.datasets.corpus'"),
    (lambda d: d.update(tasks={}), "'tasks' names no task"),
])
def test_task_lists_that_disagree_name_the_key(mutate, message):
    data = shipped()
    mutate(data)
    with pytest.raises(PipelineError, match=None) as err:
        check_task_lists(data)
    assert message in str(err.value)


def test_check_file_runs_the_task_list_check(tmp_path):
    from pipeline import schema

    data = shipped()
    data["finetune"].pop("qa")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(PipelineError, match="task 'qa' has no 'finetune.qa' section"):
        schema.check_file(tmp_path / "params.yaml")


def test_no_data_set_may_be_named_tokenizer():
    from pipeline.data.params import DataSource, PrepareParams

    with pytest.raises(ValueError, match="named 'tokenizer'"):
        PrepareParams(datasets={"tokenizer": DataSource(type="text", train_size=1, validation_size=1)})


def test_stages_expand_over_the_tasks_in_params_yaml(tmp_path):
    """No stage of dvc.yaml names a task; adding a task's sections to params.yaml adds its stages."""
    stages_text = yaml.safe_dump(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])
    for name in ("cls", "qa"):  # the corpus is no task: pretraining reads data/corpus by name
        assert f"/{name}" not in stages_text and f"{name}/" not in stages_text, name
    repo = clean_copy(tmp_path / "repo")
    sh(repo, "git", "init", "-q")
    params = with_task(shipped(), "sst2", glue="sst2")
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc = yaml.safe_load((repo / "dvc.yaml").read_text())
    methods, variants = (next(v[k] for v in dvc["vars"] if k in v) for k in ("prune_methods", "variants"))
    tasks = ["cls", "qa", "sst2"]
    expected = {"tokenizer", "base", "merge", "report", "pretrain@a", "pretrain@b"}
    expected |= {f"prepare@{d}" for d in ("corpus", *tasks)}
    sources = params["quantize"]["sources"]
    expected |= {f"{s}@{t}" for s in ("finetune", "teacher") for t in tasks}
    expected |= {f"{s}@{t}-{m}" for s in ("prune", "distill") for t in tasks for m in methods}
    expected |= {f"evaluate@{t}-{v}" for t in tasks for v in variants}
    schemes = params["quantize"]["schemes"]
    expected |= {f"{s}@{t}-{q}-{src}" for s in ("quantize", "evaluate-quantize") for t in tasks for q in schemes
                 for src in sources}
    exported = params["export"]["sources"]
    expected |= {f"export@{t}-{s}" for t in tasks for s in exported}
    expected |= {f"evaluate-export@{t}-{f}-{s}" for t in tasks for f in ("onnx", "onnx_int8") for s in exported}
    assert all_stages(repo) == expected


# ------------------------------------------------------------------------------------- the prepare stage
def test_prepare_only_one_data_set_or_the_tokenizer(tmp_path, monkeypatch):
    from stages import prepare

    params = shipped()
    for ds in params["prepare"]["datasets"].values():
        ds.update(train_size=20, validation_size=5)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    assert prepare.main(["data", "--only", "cls", "--metrics", "m/cls.json"]) in (0, None)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["cls"]
    assert json.loads((tmp_path / "m" / "cls.json").read_text()) == {
        "cls": {"train": {"rows": 20, "bad_rows_dropped": 0, "leakage_dropped": 0},
                "validation": {"rows": 5, "bad_rows_dropped": 0, "duplicates_of_train": 0}}}
    assert prepare.main(["data", "--only", "tokenizer"]) in (0, None)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["cls", "tokenizer"]
    assert (tmp_path / "data" / "tokenizer" / "vocab.txt").is_file()
    # the same rows as the whole stage writes: one data set alone is prepared exactly as before
    assert prepare.main(["all"]) in (0, None)
    assert (tmp_path / "all" / "cls" / "train.jsonl").read_bytes() == (tmp_path / "data" / "cls" / "train.jsonl").read_bytes()
    assert prepare.main(["data", "--only", "nope"]) == 2  # a data set params.yaml does not have


def test_prepare_reads_only_its_data_set():
    from stages import prepare

    reads = lambda *argv: set(prepare.reads(prepare.parser().parse_args(["data", *argv])))
    assert reads("--only", "qa") == {"prepare.seed", "prepare.datasets.qa"}
    assert reads("--only", "tokenizer") == {"prepare.tokenizer"}
    assert reads() == {"prepare"}


# ------------------------------------------------------------------------------------------ the GLUE table
def frame(rows: dict[str, dict]) -> pd.DataFrame:
    """Flat metrics as the report collects them: a row per variant."""
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("variant").sort_index()


def run_results() -> dict[str, pd.DataFrame]:
    return {
        "sst2": frame({"finetune": {"glue": "sst2", "accuracy": 0.9}, "quantize": {"glue": "sst2", "accuracy": 0.8}}),
        "paraphrase": frame({"finetune": {"glue": "mrpc", "accuracy": 0.7, "f1": 0.8},
                             "quantize": {"glue": "mrpc", "accuracy": 0.6, "f1": 0.7}}),
        "nli": frame({"finetune": {"glue": "mnli", "accuracy": 0.6, "accuracy_mismatched": 0.5},
                      "quantize": {"glue": "mnli", "accuracy": 0.5, "accuracy_mismatched": None}}),
        "qa": frame({"finetune": {"glue": "", "exact_match": 50.0, "f1": 60.0}}),
        "cls": frame({"finetune": {"glue": None, "accuracy": 0.99, "f1": 0.99}}),
    }


def test_glue_table_rows_columns_and_average():
    table = glue_table.build(run_results())
    assert [r["task"] for r in table["tasks"]] == ["sst2", "paraphrase", "nli"]  # the leaderboard's order
    assert table["variants"] == ["finetune", "quantize"] and table["omitted"] == ["cls", "qa"]
    mrpc = table["tasks"][1]
    assert mrpc["metrics"] == ["f1", "accuracy"] and mrpc["scores"]["finetune"]["score"] == pytest.approx(0.75)
    # MNLI is one task: the mean of matched and mismatched accuracy
    assert table["tasks"][2]["scores"]["finetune"]["score"] == pytest.approx(0.55)
    assert table["average"]["finetune"] == pytest.approx((0.9 + 0.75 + 0.55) / 3)
    # a metric not measured: no task score, no average (never a partial mean)
    assert table["tasks"][2]["scores"]["quantize"] == {"accuracy": 0.5, "accuracy_mismatched": None, "score": None}
    assert table["average"]["quantize"] is None


def test_glue_markdown_and_strict_json(tmp_path):
    table = glue_table.build(run_results())
    glue_table.write(tmp_path, table)
    text = (tmp_path / "glue.md").read_text()
    assert "| task | metric | finetune | quantize |" in text
    assert "| nli (MNLI-m/mm) | acc. matched/mismatched | 60.0/50.0 | 50.0/- |" in text
    assert "| paraphrase (MRPC) | F1/acc. | 80.0/70.0 | 70.0/60.0 |" in text
    assert "| GLUE average (3 tasks) |  | 73.3 | - |" in text
    assert "MNLI counts once" in text and "validation (dev)" in text and "Left out" in text and "cls, qa" in text
    loaded = json.loads((tmp_path / "glue.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert loaded == json.loads(json.dumps(table))


def test_glue_table_without_glue_tasks_and_with_a_glue_task_twice():
    empty = glue_table.build({"qa": run_results()["qa"]})
    assert empty["tasks"] == [] and "No GLUE task in this run" in glue_table.markdown(empty)
    results = run_results()
    results["sst2_more"] = results["sst2"]
    twice = glue_table.build(results)
    assert [r["task"] for r in twice["tasks"]][:2] == ["sst2", "sst2_more"]
    assert twice["average"] == {"finetune": None, "quantize": None}  # SST-2 would count twice


def test_glue_table_refuses_variants_that_disagree():
    bad = {"x": frame({"finetune": {"glue": "sst2", "accuracy": 1.0}, "quantize": {"glue": "rte", "accuracy": 1.0}})}
    with pytest.raises(PipelineError, match="variants name different GLUE tasks"):
        glue_table.build(bad)


def test_glue_rows_use_the_metrics_the_tasks_report():
    """The table reads the names pipeline.tasks.glue scores under, on every validation split of the task."""
    from pipeline.tasks import glue

    assert list(glue_table.ROWS) == ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"]
    for name, row in glue_table.ROWS.items():
        spec = glue.TASKS[name]
        reported = {f"{m}{suffix}" for suffix in spec.eval_splits.values() for m in spec.metrics}
        assert set(row.metrics) == reported, name
        assert math.isclose(glue_table.task_score([0.5] * len(row.metrics)), 0.5)


# ------------------------------------------------------------------------------ blast radius of a data set
def rerun_after_setting(repo: Path, dotted: str, value) -> set[str]:
    """Stages ``dvc repro`` would rerun after setting one param: those ``dvc status`` lists and everything
    downstream of them (params.yaml is restored after)."""
    path = repo / "params.yaml"
    original = path.read_text()
    data = yaml.safe_load(original)
    node = data
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        return rerun_set(repo)
    finally:
        path.write_text(original)


def task_stages(repo: Path, task: str) -> set[str]:
    names = all_stages(repo)
    return {n for n in names if n.split("@")[-1] == task or n.split("@")[-1].startswith(f"{task}-")}


@pytest.mark.e2e
def test_a_data_set_change_reruns_only_its_task(placeholder_repo, tmp_path):
    # A copy of the session's placeholder repository (tests/conftest.py): every output a placeholder, lock committed.
    repo = placeholder_copy(placeholder_repo, tmp_path / "repo")
    cls = task_stages(repo, "cls")
    assert {"prepare@cls", "finetune@cls", "teacher@cls", "quantize@cls-dynamic_int8-distill-heads",
            "evaluate-quantize@cls-dynamic_int8-distill-heads", "evaluate@cls-finetune"} <= cls
    assert rerun_after_setting(repo, "prepare.datasets.cls.train_size", 10) == cls | {"report"}
    assert rerun_after_setting(repo, "prepare.datasets.qa.source", "sources/squad") == task_stages(repo, "qa") | {"report"}
    assert rerun_after_setting(repo, "tasks.cls.max_length", 32) == cls - {"prepare@cls"} | {"report"}
    # the corpus is no task: it feeds pretraining, so every task's models follow
    rerun = rerun_after_setting(repo, "prepare.datasets.corpus.train_size", 10)
    assert "pretrain@a" in rerun and not rerun & {"prepare@cls", "prepare@qa", "tokenizer", "base"}
    # the generator seed is every data set's (but not the tokenizer's): everything but tokenizer and base reruns
    assert rerun_after_setting(repo, "prepare.seed", 1) == all_stages(repo) - {"tokenizer", "base"}


# ------------------------------------------------------------------------------------ task profiles
def _apply(*argv: str) -> int:
    import sys

    sys.path.insert(0, str(ROOT / "profiles"))
    import apply  # profiles/apply.py

    return apply.main(list(argv))


def test_task_profile_replaces_the_tasks(tmp_path, capsys):
    out = tmp_path / "params.yaml"
    assert _apply(str(ROOT / "profiles" / "tasks" / "sst2.yaml"), "--params", str(ROOT / "params.yaml"),
                  "--write", str(out)) == 0
    merged = yaml.safe_load(out.read_text())
    assert check_task_lists(merged) == ["sst2"]
    assert merged["prepare"]["datasets"]["sst2"]["source"] == "sources/SST-2"
    assert set(merged["prepare"]["datasets"]) == {"corpus", "sst2"}
    # -S overrides cannot add or remove entries: refused, pointing at --write
    assert _apply(str(ROOT / "profiles" / "tasks" / "sst2.yaml"), "--params", str(ROOT / "params.yaml")) == 1
    assert "apply it with --write" in capsys.readouterr().err


def test_task_profile_that_leaves_the_tasks_inconsistent_writes_nothing(tmp_path, capsys):
    half = tmp_path / "half.yaml"
    half.write_text("tasks:\n  cls: null\n")  # cls removed from tasks only
    out = tmp_path / "params.yaml"
    assert _apply(str(half), "--params", str(ROOT / "params.yaml"), "--write", str(out)) == 1
    assert "'finetune.cls' is no task" in capsys.readouterr().err and not out.exists()
    (tmp_path / "typo.yaml").write_text("model:\n  hiden_size: null\n")  # null outside task sections: a typo
    assert _apply(str(tmp_path / "typo.yaml"), "--params", str(ROOT / "params.yaml"), "--write", str(out)) == 1
    assert "'model.hiden_size' does not exist" in capsys.readouterr().err
