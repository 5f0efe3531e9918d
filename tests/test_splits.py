"""Evaluation-only data sets, the seeded ``validation_from_train`` split-off and the train/validation leakage
check (issue 25.2 and 25.3), with every fix their messages suggest applied and shown to work."""

from __future__ import annotations

import json
import re

import pytest

from pipeline.core.errors import PipelineError
from pipeline.data.io import read_split, write_jsonl
from pipeline.data.params import DataSource
from pipeline.data.sources import fetch, fetch_counted
from pipeline.data.splits import input_key
from pipeline.config.task_names import check_task_lists


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def csv_rows(n: int, start: int = 0) -> str:
    return "sentence,label\n" + "".join(f"sentence number {i},{i % 2}\n" for i in range(start, start + n))


def error_of(src: DataSource, name: str = "cls") -> str:
    with pytest.raises(PipelineError) as excinfo:
        fetch_counted(src, name, 0)
    assert "\n" not in str(excinfo.value)
    return str(excinfo.value)


def squad(qas_per_context: int, contexts: int, prefix: str = "q") -> str:
    paragraphs = [{"context": f"Context {c} is about cats.", "qas": [
        {"id": f"{prefix}{c}-{q}", "question": f"Question {q} on {c}?",
         "answers": [{"text": "cats", "answer_start": len(f"Context {c} is about ")}]}
        for q in range(qas_per_context)]} for c in range(contexts)]
    return json.dumps({"version": "1.1", "data": [{"title": "T", "paragraphs": paragraphs}]})


# ------------------------------------------------------------------------------------------ leakage
def test_same_file_twice_is_refused_and_each_suggestion_works(tmp_path, capsys):
    d = tmp_path / "twice"
    write(d / "train.csv", csv_rows(20))
    write(d / "dev.csv", csv_rows(20))
    message = error_of(DataSource(type="classification", source=str(d)))
    assert message.startswith("prepare.datasets.cls: 20 of 20 validation rows also occur in train: the whole "
                              "validation")
    assert "drop" not in message  # it would leave no train row: not suggested
    assert "validation_from_train: 0.1" in message and "leakage: warn to keep them" in message
    # warn: kept, counted, one warning line.
    out, counts = fetch_counted(DataSource(type="classification", source=str(d), leakage="warn"), "cls", 0)
    assert counts["validation"]["duplicates_of_train"] == 20 and len(out["validation"]) == 20
    assert "warning: prepare.datasets.cls: 20 of 20 validation rows also occur in train" in capsys.readouterr().err
    # "remove the validation file and set validation_from_train: 0.1" ... as suggested.
    (d / "dev.csv").unlink()
    out, counts = fetch_counted(DataSource(type="classification", source=str(d), validation_from_train=0.1), "cls", 0)
    assert (len(out["train"]), len(out["validation"])) == (18, 2)
    assert counts["validation"]["duplicates_of_train"] == 0


def test_full_overlap_with_more_train_rows_suggests_drop_which_works(tmp_path):
    d = tmp_path / "dev-inside-train"
    write(d / "train.csv", csv_rows(30))
    write(d / "dev.csv", csv_rows(5, start=10))
    message = error_of(DataSource(type="classification", source=str(d)))
    assert "leakage: drop to train on the other 25 train rows" in message
    out, counts = fetch_counted(DataSource(type="classification", source=str(d), leakage="drop"), "cls", 0)
    assert len(out["train"]) == 25 and counts["train"]["leakage_dropped"] == 5 and counts["train"]["rows"] == 25
    assert not {input_key(r, "classification") for r in out["train"]} & {
        input_key(r, "classification") for r in out["validation"]}
    assert len(out["validation"]) == 5  # the validation set stays whole
    # train_size counts the rows after the drop: the first 12 rows that are not validation rows.
    out, _ = fetch_counted(DataSource(type="classification", source=str(d), leakage="drop", train_size=12), "cls", 0)
    assert [r["sentence"] for r in out["train"]] == [f"sentence number {i}" for i in (*range(10), 15, 16)]


def test_partial_overlap_warns_by_default_and_error_policy_suggestions_work(tmp_path, capsys):
    d = tmp_path / "partial"
    write(d / "train.csv", csv_rows(10))
    write(d / "dev.csv", csv_rows(4, start=8))  # rows 8 and 9 are in train
    out, counts = fetch_counted(DataSource(type="classification", source=str(d)), "cls", 0)
    assert counts["validation"]["duplicates_of_train"] == 2 and len(out["train"]) == 10
    assert capsys.readouterr().err.strip() == ("warning: prepare.datasets.cls: 2 of 4 validation rows also occur in "
                                               "train (exact duplicates of their input); kept "
                                               "(prepare.datasets.cls.leakage: drop trains without them)")
    message = error_of(DataSource(type="classification", source=str(d), leakage="error"))
    assert message == ("prepare.datasets.cls: 2 of 4 validation rows also occur in train (exact duplicates of their "
                       "input; prepare.datasets.cls.leakage: error); set prepare.datasets.cls.leakage: drop to train "
                       "on the other 8 train rows, or warn to keep them")
    for policy, train_rows in (("drop", 8), ("warn", 10)):
        out, _ = fetch_counted(DataSource(type="classification", source=str(d), leakage=policy), "cls", 0)
        assert len(out["train"]) == train_rows


def test_leakage_compares_inputs_not_labels_or_ids(tmp_path):
    d = tmp_path / "qa"
    write(d / "train-v1.1.json", squad(2, 2, prefix="train"))
    write(d / "dev-v1.1.json", squad(1, 1, prefix="dev"))  # the same question, renumbered
    with pytest.raises(PipelineError, match="1 of 1 validation rows also occur in train"):
        fetch(DataSource(type="qa", source=str(d)), "qa", 0)
    c = tmp_path / "relabelled"
    write(c / "train.csv", csv_rows(3))
    write(c / "dev.csv", "sentence,label\nsentence number 0,1\nsomething else,0\n")  # label differs: still seen
    _, counts = fetch_counted(DataSource(type="classification", source=str(c)), "cls", 0)
    assert counts["validation"]["duplicates_of_train"] == 1


def test_embedded_synthetic_default_is_counted_not_changed(capsys):
    src = DataSource(type="classification", train_size=3000, validation_size=500)
    out, counts = fetch_counted(src, "cls", 0)
    assert len(out["train"]) == 3000 and len(out["validation"]) == 500  # a partial overlap only warns
    seen = {r["sentence"] for r in out["train"]}
    assert counts["validation"]["duplicates_of_train"] == sum(r["sentence"] in seen for r in out["validation"])
    assert counts["train"]["leakage_dropped"] == 0


# -------------------------------------------------------------------------------- split-off
def test_validation_from_train_is_seeded_and_leak_free(tmp_path, capsys):
    d = tmp_path / "train-only"
    write(d / "train.csv", csv_rows(100) + "sentence number 3,1\n")  # a duplicate: stays on one side
    src = DataSource(type="classification", source=str(d), validation_from_train=0.2)
    out, counts = fetch_counted(src, "cls", 0)
    again, _ = fetch_counted(src, "cls", 0)
    other, _ = fetch_counted(src, "cls", 1)
    assert out == again and out["validation"] != other["validation"]
    assert len(out["validation"]) == 20 and len(out["train"]) == 81
    assert counts["train"]["split_off"] == 20 and counts["train"]["rows"] == 81
    assert counts["validation"] == {"rows": 20, "bad_rows_dropped": 0, "duplicates_of_train": 0}
    ids = [r["idx"] for r in out["train"]]
    assert ids == sorted(ids)  # file order kept on both sides
    limited, counts = fetch_counted(DataSource(type="classification", source=str(d), validation_from_train=0.2,
                                               train_size=50, validation_size=5), "cls", 0)
    assert limited["validation"] == out["validation"][:5] and limited["train"] == out["train"][:50]
    assert counts["train"]["split_off"] == 20 and counts["validation"]["rows"] == 5


def test_qa_split_off_keeps_a_context_on_one_side(tmp_path):
    d = tmp_path / "squad-train"
    write(d / "train-v1.1.json", squad(3, 20))
    out = fetch(DataSource(type="qa", source=str(d), validation_from_train=0.25), "qa", 0)
    assert len(out["validation"]) == 15 and len(out["train"]) == 45
    assert not {r["context"] for r in out["train"]} & {r["context"] for r in out["validation"]}


def test_missing_validation_suggests_the_split_off_which_works_and_a_dev_file_is_then_not_read(tmp_path, capsys):
    d = tmp_path / "only-train"
    write(d / "train.csv", csv_rows(10))
    message = error_of(DataSource(type="classification", source=str(d)))
    fix = re.search(r"set (prepare\.datasets\.cls\.validation_from_train): ([0-9.]+)", message)
    assert fix and fix.group(2) == "0.1"
    out = fetch(DataSource(type="classification", source=str(d), validation_from_train=float(fix.group(2))), "cls", 0)
    assert len(out["validation"]) == 1
    write(d / "dev.csv", csv_rows(3, start=50))
    capsys.readouterr()
    again = fetch(DataSource(type="classification", source=str(d), validation_from_train=0.1), "cls", 0)
    assert again == out
    assert "note: prepare.datasets.cls: not reading dev.csv (prepare.datasets.cls.validation_from_train)" in \
        capsys.readouterr().err


def test_split_off_that_leaves_a_side_empty_is_refused(tmp_path):
    d = tmp_path / "tiny"
    write(d / "train.csv", csv_rows(3))
    message = error_of(DataSource(type="classification", source=str(d), validation_from_train=0.1))
    assert message == ("prepare.datasets.cls.validation_from_train: 0.1 of 3 train rows (3 groups of equal input) "
                       "leaves no validation row")


# --------------------------------------------------------------------------- evaluation only
def test_missing_train_suggests_evaluation_only_which_works(tmp_path, capsys):
    d = tmp_path / "dev-only"
    write(d / "dev-v1.1.json", squad(2, 2))
    message = error_of(DataSource(type="qa", source=str(d)), "qa")
    assert "no train file" in message and message.endswith("or set prepare.datasets.qa.evaluation_only: true for a "
                                                           "data set that is only evaluated")
    out, counts = fetch_counted(DataSource(type="qa", source=str(d), evaluation_only=True), "qa", 0)
    assert set(out) == {"validation"} and len(out["validation"]) == 4
    assert set(counts) == {"validation"} and counts["validation"]["duplicates_of_train"] == 0
    write(d / "train-v1.1.json", squad(1, 1))  # there, but not read
    capsys.readouterr()
    assert fetch(DataSource(type="qa", source=str(d), evaluation_only=True), "qa", 0) == out
    assert "not reading train-v1.1.json (prepare.datasets.qa.evaluation_only)" in capsys.readouterr().err


def test_prepare_stage_writes_an_evaluation_only_set_and_trainers_refuse_it(tmp_path, monkeypatch):
    from stages import prepare

    d = tmp_path / "wikitext-2"
    write(d / "wiki.valid.tokens", " = Head = \n the valid text . \n")
    write(d / "wiki.test.tokens", " the test text . \n")
    params = {"prepare": {"seed": 0, "tokenizer": "synthetic", "datasets": {
        "dev": {"type": "classification", "source": str(tmp_path / "sst2"), "evaluation_only": True},
        "wiki": {"type": "text", "source": str(d), "evaluation_only": True}}}}
    write(tmp_path / "sst2" / "dev.tsv", "sentence\tlabel\nfine \t1\n")
    write(tmp_path / "params.yaml", json.dumps(params))
    monkeypatch.chdir(tmp_path)
    assert prepare.main(["data", "--only", "dev", "--metrics", "metrics/prepare/dev.json"]) == 0
    assert prepare.main(["data", "--only", "wiki", "--metrics", "metrics/prepare/wiki.json"]) == 0
    assert sorted(p.name for p in (tmp_path / "data" / "dev").iterdir()) == ["validation.jsonl"]
    assert json.loads((tmp_path / "metrics/prepare/wiki.json").read_text()) == {"wiki": {"validation": {
        "rows": 1, "bad_rows_dropped": 0, "blank_lines_dropped": 0, "headings_dropped": 1, "duplicates_of_train": 0}}}
    assert read_split(tmp_path / "data" / "dev", "validation", "classification")[0]["sentence"] == "fine "
    with pytest.raises(PipelineError) as excinfo:
        read_split(tmp_path / "data" / "dev", "train", "classification")
    assert str(excinfo.value) == (f"{tmp_path}/data/dev: an evaluation-only data set (no train split) cannot be "
                                  "trained on; give it a train file, or train on another data set and evaluate on "
                                  "this one")


def _params(**datasets) -> dict:
    tasks = {"cls": {"type": "classification"}}
    return {"tasks": tasks, "finetune": {"cls": {}}, "teacher": {"cls": {}}, "distill": {"train": {"cls": {}}},
            "prepare": {"datasets": {"corpus": {"type": "text"}, "cls": {"type": "classification"}, **datasets}}}


def test_task_lists_accept_an_evaluation_only_set_but_not_as_a_task_or_corpus():
    assert check_task_lists(_params(cls_dev={"type": "classification", "evaluation_only": True})) == ["cls"]
    with pytest.raises(PipelineError, match=r"'prepare.datasets.cls_dev' \(type 'classification'\) is no task: "
                                            r"add .*set its evaluation_only: true"):
        check_task_lists(_params(cls_dev={"type": "classification"}))
    raw = _params()
    raw["prepare"]["datasets"]["cls"]["evaluation_only"] = True
    with pytest.raises(PipelineError, match="'prepare.datasets.cls.evaluation_only': task 'cls' trains on its data"):
        check_task_lists(raw)
    raw = _params()
    raw["prepare"]["datasets"]["corpus"]["evaluation_only"] = True
    with pytest.raises(PipelineError, match="'prepare.datasets.corpus.evaluation_only': pretraining trains on it"):
        check_task_lists(raw)


@pytest.mark.parametrize("kw, message", [
    ({"evaluation_only": True, "validation_from_train": 0.1}, "no train split to take validation_from_train from"),
    ({"evaluation_only": True, "train_size": 5}, "train_size: an evaluation_only data set has no train split"),
    ({"validation_from_train": 1.0}, r"validation_from_train must be in \(0, 1\)"),
    ({"validation_from_train": -0.1}, r"validation_from_train must be in \(0, 1\)"),
])
def test_bad_split_params(tmp_path, kw, message):
    with pytest.raises(ValueError, match=message):
        DataSource(type="classification", source=str(tmp_path), **kw)
    with pytest.raises(ValueError, match="apply only to data from the hub or files"):
        DataSource(type="classification", train_size=1, validation_size=1, evaluation_only=True)


def test_write_jsonl_is_untouched_by_the_checks(tmp_path):
    """The default's prepared rows: the leakage check only counts (no row changes, same bytes)."""
    src = DataSource(type="qa", train_size=50, validation_size=10)
    out, _ = fetch_counted(src, "qa", 0)
    from pipeline.data import synthetic

    write_jsonl(tmp_path / "a.jsonl", out["train"])
    write_jsonl(tmp_path / "b.jsonl", synthetic.generate_qa(50, 1))
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
