"""Files whose columns are named otherwise (issue 25.1): the ``columns`` mapping, the common aliases with their
note, and every fix a data error message suggests, applied as written and shown to work.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from pipeline.core.errors import PipelineError
from pipeline.data.params import DataSource
from pipeline.data.sources import fetch, fetch_counted


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def source(root, files: dict[str, str], **kw) -> DataSource:
    for name, text in files.items():
        write(root / name, text)
    return DataSource(type=kw.pop("type", "classification"), source=str(root), **kw)


def error_of(src: DataSource, name: str = "cls") -> str:
    with pytest.raises(PipelineError) as excinfo:
        fetch(src, name, 0)
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def suggested_columns(message: str) -> dict[str, str]:
    """The ``columns`` entry a message suggests, parsed as the YAML a user would paste."""
    found = re.search(r"\.columns: (\{[^}]*\})", message)
    assert found, message
    return yaml.safe_load(found.group(1))


# SST-2 as three public copies share it: GLUE's header, label first with text_a, and text/label.
GLUE = "sentence\tlabel\nit 's a charming journey . \t1\nunfunny and dull \t0\n"
LABEL_TEXT_A = "label\ttext_a\n1\tit 's a charming journey . \n0\tunfunny and dull \n"
TEXT_LABEL = "text\tlabel\nit 's a charming journey . \t1\nunfunny and dull \t0\n"
DEV = {"label\ttext_a": "label\ttext_a\n1\ta gem \n", "text\tlabel": "text\tlabel\na gem \t1\n"}


@pytest.mark.parametrize("glue", ["sst2", ""])
@pytest.mark.parametrize("train, header, alias", [(LABEL_TEXT_A, "label\ttext_a", "text_a"),
                                                  (TEXT_LABEL, "text\tlabel", "text")])
def test_common_sst2_copies_are_read_with_a_note(tmp_path, capsys, glue, train, header, alias):
    src = source(tmp_path, {"train.tsv": train, "dev.tsv": DEV[header]}, glue=glue)
    out = fetch(src, "cls", 0)
    expected = fetch(source(tmp_path / "glue", {"train.tsv": GLUE, "dev.tsv": "sentence\tlabel\na gem \t1\n"},
                            glue=glue), "cls", 0)
    assert out == expected
    assert out["train"][0] == {"sentence": "it 's a charming journey . ", "label": 1, "idx": 0}
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert notes == [f"note: prepare.datasets.cls: read column '{alias}' as 'sentence' in {tmp_path}/train.tsv, "
                     f"{tmp_path}/dev.tsv (a common alias; prepare.datasets.cls.columns: {{sentence: {alias}}} "
                     "says so explicitly)"]
    # Saying it explicitly gives the same rows and no note.
    assert fetch(source(tmp_path, {}, glue=glue, columns={"sentence": alias}), "cls", 0) == out
    assert "note:" not in capsys.readouterr().err


@pytest.mark.parametrize("glue", ["sst2", ""])
def test_unknown_column_name_suggests_the_mapping_that_works(tmp_path, glue):
    files = {"train.tsv": "review\tlabel\ngood \t1\nbad \t0\n", "dev.tsv": "review\tlabel\nfine \t1\n"}
    message = error_of(source(tmp_path, files, glue=glue))
    assert f"{tmp_path}/train.tsv: no column sentence in its columns ['review', 'label']" in message
    assert "bad_rows" not in message  # dropping every row cannot fix a column: not suggested
    assert ("glue 'sst2' the right task?" in message) == bool(glue)
    mapping = suggested_columns(message)
    assert mapping == {"sentence": "review"}
    out = fetch(source(tmp_path, {}, glue=glue, columns=mapping), "cls", 0)
    assert out["train"] == [{"sentence": "good ", "label": 1, "idx": 0}, {"sentence": "bad ", "label": 0, "idx": 1}]


def test_several_candidates_suggest_a_placeholder_that_works_when_filled(tmp_path):
    files = {"train.csv": "id,title,body,label\n1,t,good,1\n2,u,bad,0\n", "dev.csv": "id,title,body,label\n3,v,ok,1\n"}
    message = error_of(source(tmp_path, files))
    mapping = suggested_columns(message.replace("<column>", "body"))
    assert mapping == {"sentence": "body"}
    assert [r["sentence"] for r in fetch(source(tmp_path, {}, columns=mapping), "cls", 0)["train"]] == ["good", "bad"]


def test_label_column_named_otherwise(tmp_path, capsys):
    files = {"train.jsonl": '{"sentence": "good", "labels": 1}\n{"sentence": "bad", "labels": 0}\n',
             "dev.jsonl": '{"sentence": "ok", "labels": 1}\n'}
    out = fetch(source(tmp_path, files), "cls", 0)  # the hub's "labels": an alias
    assert [r["label"] for r in out["train"]] == [1, 0]
    assert "read column 'labels' as 'label'" in capsys.readouterr().err
    write(tmp_path / "train.jsonl", '{"sentence": "good", "polarity": 1}\n')
    write(tmp_path / "dev.jsonl", '{"sentence": "ok", "polarity": 1}\n')
    mapping = suggested_columns(error_of(source(tmp_path, {})))
    assert mapping == {"label": "polarity"}
    assert fetch(source(tmp_path, {}, columns=mapping), "cls", 0)["validation"][0]["label"] == 1


def test_text_a_text_b_is_a_sentence_pair(tmp_path):
    files = {"train.csv": "text_a,text_b,label\nA man sleeps.,Nobody sleeps.,0\n",
             "dev.csv": "text_a,text_b,label\nx,y,1\n"}
    out = fetch(source(tmp_path, files), "cls", 0)
    assert out["train"] == [{"sentence1": "A man sleeps.", "sentence2": "Nobody sleeps.", "label": 0, "idx": 0}]


def test_explicit_mapping_wins_and_must_exist(tmp_path):
    files = {"train.csv": "sentence,clean,label\nRAW,good,1\n", "dev.csv": "sentence,clean,label\nRAW,ok,1\n"}
    out = fetch(source(tmp_path, files, columns={"sentence": "clean"}), "cls", 0)
    assert out["train"] == [{"sentence": "good", "label": 1, "idx": 0}]
    message = error_of(source(tmp_path, {}, columns={"sentence": "cleaned"}))
    assert message == (f"prepare.datasets.cls.columns: {tmp_path}/train.csv has no column 'cleaned' "
                       "(its columns: ['sentence', 'clean', 'label'])")


def test_qa_and_text_columns(tmp_path):
    row = {"qid": "a", "title": "t", "context": "The cat sat.", "question": "Who sat?",
           "answers": {"text": ["cat"], "answer_start": [4]}}
    files = {"train.jsonl": json.dumps(row) + "\n", "dev.jsonl": json.dumps({**row, "question": "What?"}) + "\n"}
    mapping = suggested_columns(error_of(source(tmp_path / "qa", files, type="qa"), "qa"))
    assert mapping == {"id": "qid"}
    assert fetch(source(tmp_path / "qa", {}, type="qa", columns=mapping), "qa", 0)["train"][0]["id"] == "a"
    corpus = {"train.jsonl": '{"content": "one line ."}\n', "dev.jsonl": '{"content": "another ."}\n'}
    assert fetch(source(tmp_path / "c", corpus, type="text"), "corpus", 0)["train"] == [{"text": "one line ."}]


@pytest.mark.parametrize("columns, message", [
    ({"sentance": "text"}, "columns: 'sentance' is no classification column"),
    ({"sentence": "a", "label": "a"}, "distinct non-empty file column names"),
])
def test_bad_columns_params(tmp_path, columns, message):
    with pytest.raises(ValueError, match=message):
        DataSource(type="classification", source=str(tmp_path), columns=columns)
    with pytest.raises(ValueError, match="columns applies only to data from the hub or files"):
        DataSource(type="classification", train_size=1, validation_size=1, columns={"sentence": "text"})


def test_mapping_a_column_the_data_set_does_not_read_is_refused(tmp_path):
    files = {"train.tsv": "sentence\tlabel\tn\ngood\t1\t3\n", "dev.tsv": "sentence\tlabel\tn\nok\t1\t4\n"}
    message = error_of(source(tmp_path, files, glue="sst2", columns={"idx": "n"}))
    assert "columns: 'idx' is not a column this data set reads" in message


# ------------------------------------------------------------ the other suggestions of the data errors
def test_bad_rows_drop_suggestion_works_and_an_all_dropped_split_says_why(tmp_path):
    files = {"train.csv": "sentence,label\ngood,1\n,0\n", "dev.csv": "sentence,label\nok,1\n"}
    message = error_of(source(tmp_path, files))
    assert message.endswith("(prepare.datasets.cls.bad_rows: drop drops such rows)")
    out, counts = fetch_counted(source(tmp_path, {}, bad_rows="drop"), "cls", 0)
    assert counts["train"]["bad_rows_dropped"] == 1 and len(out["train"]) == 1
    write(tmp_path / "dev.csv", "sentence,label\n,1\n")
    message = error_of(source(tmp_path, {}, bad_rows="drop"))
    assert message == (f"prepare.datasets.cls: {tmp_path}/dev.csv: split is empty (every row was dropped; the first: "
                       f"{tmp_path}/dev.csv: line 2: empty 'sentence')")


def test_label_names_suggestion_works(tmp_path):
    files = {"train.csv": "sentence,label\ngood,positive\nbad,negative\n", "dev.csv": "sentence,label\nok,positive\n"}
    message = error_of(source(tmp_path, files))
    assert "expected a number (label_names maps names to ids)" in message
    out = fetch(source(tmp_path, {}, label_names=["negative", "positive"]), "cls", 0)
    assert [r["label"] for r in out["train"]] == [1, 0]


@pytest.mark.parametrize("policy", ["fix", "drop"])
def test_answer_mismatch_suggestions_work(tmp_path, policy):
    context = "The cat sat on the mat."
    rows = [{"id": "a", "title": "t", "context": context, "question": "Who?",
             "answers": {"text": ["cat"], "answer_start": [5]}},
            {"id": "b", "title": "t", "context": context, "question": "Where?",
             "answers": {"text": ["mat"], "answer_start": [19]}}]
    files = {"train.jsonl": json.dumps(rows[0]) + "\n" + json.dumps(rows[1]) + "\n",
             "dev.jsonl": json.dumps({**rows[1], "question": "On what?"}) + "\n"}
    message = error_of(source(tmp_path, files, type="qa"), "qa")
    assert "prepare.datasets.qa.answer_mismatch: fix moves it to the nearest occurrence, drop drops the row" in message
    out, counts = fetch_counted(source(tmp_path, {}, type="qa", answer_mismatch=policy), "qa", 0)
    if policy == "fix":
        assert out["train"][0]["answers"]["answer_start"] == [4] and counts["train"]["answers_fixed"] == 1
    else:
        assert [r["id"] for r in out["train"]] == ["b"] and counts["train"]["answer_mismatch_dropped"] == 1
