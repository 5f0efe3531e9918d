"""Local sources as people download them (GLUE TSVs, SQuAD JSON, WikiText, CSV/JSON/Parquet, .gz) and the
row-by-row checks of the prepare stage (bad rows, non-UTF-8 bytes, QA offsets under each policy).

Every fixture is written here in its distribution's exact layout, a few rows per file.
"""

from __future__ import annotations

import gzip
import json

import pytest

from pipeline.core.errors import PipelineError
from pipeline.data.glue_tsv import LAYOUTS
from pipeline.data.local import split_of
from pipeline.data.params import DataSource
from pipeline.data.sources import fetch, fetch_counted


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def tsv(*lines: str) -> str:
    return "".join(line + "\n" for line in lines)


def glue_source(root, task: str, files: dict[str, str], **kw) -> DataSource:
    for name, text in files.items():
        write(root / task / name, text)
    return DataSource(type="classification", source=str(root / task), glue=task, **kw)


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------------------- GLUE TSVs
def test_cola_without_header(tmp_path):
    src = glue_source(tmp_path, "cola", {
        "train.tsv": tsv("gj04\t1\t\tOur friends won't buy this analysis, let alone the next one we propose.",
                         "gj04\t0\t*\tThey drank the pub."),
        "dev.tsv": tsv("cj99\t1\t\tThe sailors rode the breeze clear of the rocks."),
        "test.tsv": tsv("index\tsentence", "0\tBill whistled past the house."),  # unlabelled: ignored
    })
    out = fetch(src, "cola", 0)
    assert out == {
        "train": [
            {"sentence": "Our friends won't buy this analysis, let alone the next one we propose.", "label": 1,
             "idx": 0},
            {"sentence": "They drank the pub.", "label": 0, "idx": 1},
        ],
        "validation": [{"sentence": "The sailors rode the breeze clear of the rocks.", "label": 1, "idx": 0}],
    }


def test_sst2_with_unescaped_quote_and_gz(tmp_path):
    src = glue_source(tmp_path, "sst2", {
        "train.tsv": tsv("sentence\tlabel", "hide new secretions from the parental units \t0",
                         'the " killer " twist is anything but \t1', "that loves its characters \t1"),
    })
    dev = tsv("sentence\tlabel", "it 's a charming journey . \t1")
    (tmp_path / "sst2" / "dev.tsv.gz").write_bytes(gzip.compress(dev.encode()))
    out = fetch(src, "sst2", 0)
    assert [r["sentence"] for r in out["train"]] == [
        "hide new secretions from the parental units ", 'the " killer " twist is anything but ',
        "that loves its characters "]
    assert [r["label"] for r in out["train"]] == [0, 1, 1]
    assert out["validation"] == [{"sentence": "it 's a charming journey . ", "label": 1, "idx": 0}]


def test_mrpc_with_bom_quotes_and_original_files_ignored(tmp_path):
    header = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String"
    a1 = 'Amrozi accused his brother , whom he called " the witness " , of deliberately distorting his evidence .'
    a2 = 'Referring to him as only " the witness " , Amrozi accused his brother of distorting his evidence .'
    src = glue_source(tmp_path, "mrpc", {
        "train.tsv": tsv(header, f"1\t702876\t702977\t{a1}\t{a2}",
                         "0\t2108705\t2108831\tYucaipa owned it .\tYucaipa bought it ."),
        "dev.tsv": tsv(header, '1\t1355540\t1355592\t" Not now , " he said .\tHe said " not now " .'),
        "msr_paraphrase_train.txt": tsv(header, "1\t1\t2\tnot\tread"),
        "dev_ids.tsv": tsv("1355540\t1355592"),
    })
    out = fetch(src, "mrpc", 0)
    assert out["train"][0] == {"sentence1": a1, "sentence2": a2, "label": 1, "idx": 0}
    assert out["train"][1]["label"] == 0 and len(out["train"]) == 2
    assert out["validation"] == [{"sentence1": '" Not now , " he said .', "sentence2": 'He said " not now " .',
                                  "label": 1, "idx": 0}]


def test_qqp_stsb_qnli_rte_wnli_columns_and_labels(tmp_path):
    qqp = tsv("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
              "402555\t536040\t536041\tHow do I control my emotions?\tHow do you control your emotions?\t1",
              "133273\t213221\t213222\tWhat is a math student's life?\tWhich level is enough for jlpt5?\t0")
    stsb = tsv("index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore",
               "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane is taking off.\t"
               "An air plane is taking off.\t5.000",
               "1\tmain-captions\tMSRvid\t2012test\t0004\tnone\tnone\tA man plays a large flute.\t"
               "A man plays a flute.\t3.800")
    qnli = tsv("index\tquestion\tsentence\tlabel",
               "0\tWhat came into force?\tThe new constitution came into force.\tentailment",
               "1\tWhere is the Rhine?\tThe Ill joins below Strasbourg.\tnot_entailment")
    rte = tsv("index\tsentence1\tsentence2\tlabel", "0\tNo weapons were found.\tWeapons were found.\tnot_entailment",
              "1\tA man bought a car.\tA car was bought.\tentailment")
    wnli = tsv("index\tsentence1\tsentence2\tlabel", "0\tI stuck a pin through a carrot.\tThe carrot had a hole.\t1",
               "1\tJohn could not see the stage.\tThe stage was short.\t0")
    for task, text, first, labels in [
        ("qqp", qqp, {"question1": "How do I control my emotions?",
                      "question2": "How do you control your emotions?"}, [1, 0]),
        ("stsb", stsb, {"sentence1": "A plane is taking off.", "sentence2": "An air plane is taking off."}, [5.0, 3.8]),
        ("qnli", qnli, {"question": "What came into force?",
                        "sentence": "The new constitution came into force."}, [0, 1]),
        ("rte", rte, {"sentence1": "No weapons were found.", "sentence2": "Weapons were found."}, [1, 0]),
        ("wnli", wnli, {"sentence1": "I stuck a pin through a carrot.", "sentence2": "The carrot had a hole."}, [1, 0]),
    ]:
        # The same file as train and dev: the leakage check would stop (tests/test_leakage.py).
        out = fetch(glue_source(tmp_path, task, {"train.tsv": text, "dev.tsv": text}, leakage="warn"), task, 0)
        assert out["train"][0] == {**first, "label": labels[0], "idx": 0}, task
        assert [r["label"] for r in out["validation"]] == labels, task
        assert all(type(r["label"]) is (float if task == "stsb" else int) for r in out["train"]), task


def test_mnli_extra_columns_and_two_dev_files(tmp_path):
    parse = "\t( ( A b ) c )\t( d e )\t(ROOT (S (NP A)))\t(ROOT (S (NP d)))"
    train_head = "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse" \
                 "\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label"
    dev_head = train_head.replace("label1\tgold_label", "label1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label")
    src = glue_source(tmp_path, "mnli", {
        "train.tsv": tsv(train_head, f"0\t31193\t31193n\tgovernment{parse}\tCream skimming has two dimensions.\t"
                                     "Product and geography matter.\tneutral\tneutral",
                         f"1\t101457\t101457e\ttelephone{parse}\tyou know during the season\tYou lose the things.\t"
                         "entailment\tentailment"),
        "dev_matched.tsv": tsv(dev_head, f"0\t63735\t63735n\tslate{parse}\tThe new rights are nice enough\t"
                                         "Everyone really likes them.\tneutral\tneutral\tentailment\tneutral"
                                         "\tneutral\tneutral"),
        "dev_mismatched.tsv": tsv(dev_head, f"0\t75290\t75290c\tletters{parse}\tYour contribution helped.\t"
                                            "It did not help.\tcontradiction\tcontradiction\tcontradiction"
                                            "\tcontradiction\tcontradiction\tcontradiction"),
    })
    out, counts = fetch_counted(src, "mnli", 0)
    assert set(out) == {"train", "validation", "validation_mismatched"}
    assert out["train"] == [
        {"premise": "Cream skimming has two dimensions.", "hypothesis": "Product and geography matter.", "label": 1,
         "idx": 0},
        {"premise": "you know during the season", "hypothesis": "You lose the things.", "label": 0, "idx": 1},
    ]
    assert out["validation"][0]["label"] == 1 and out["validation"][0]["premise"] == "The new rights are nice enough"
    assert out["validation_mismatched"][0]["label"] == 2
    assert counts["validation_mismatched"] == {"rows": 1, "bad_rows_dropped": 0, "duplicates_of_train": 0}


def test_glue_layouts_match_the_tasks():
    from pipeline.tasks.glue import TASKS

    assert set(LAYOUTS) == set(TASKS)
    for name, layout in LAYOUTS.items():
        assert tuple(ours for ours, _ in layout.text) == TASKS[name].text_columns, name
        assert layout.num_labels == TASKS[name].num_labels, name


def test_wrong_glue_task_names_the_missing_columns(tmp_path):
    sst2 = tsv("sentence\tlabel", "a fine film\t1")
    qnli = tsv("index\tquestion\tsentence\tlabel", "0\tq?\ts.\t0")
    src = glue_source(tmp_path, "qnli", {"train.tsv": sst2, "dev.tsv": qnli})
    with pytest.raises(PipelineError) as excinfo:
        fetch(src, "cls", 0)
    assert one_line_error(excinfo) == (
        f"prepare.datasets.cls: {tmp_path}/qnli/train.tsv: no column question in its columns ['sentence', 'label'] "
        "(is prepare.datasets.cls.glue 'qnli' the right task?); name the file's column with "
        "prepare.datasets.cls.columns: {question: <column>}")


# ------------------------------------------------------------------------------------------- SQuAD
CONTEXT = "Architecturally, the school has a Catholic character. Atop the Main Building is a golden statue."


def squad_doc(version: str, qas: list[dict]) -> str:
    return json.dumps({"version": version, "data": [
        {"title": "University_of_Notre_Dame", "paragraphs": [{"context": CONTEXT, "qas": qas}]}]})


def test_squad_v1_and_v2_official_json(tmp_path):
    d = tmp_path / "squad"
    gold = {"answer_start": 34, "text": "Catholic"}
    write(d / "train-v1.1.json", squad_doc("1.1", [{"answers": [gold], "question": "What character?", "id": "q1"}]))
    write(d / "dev-v2.0.json", squad_doc("v2.0", [
        {"answers": [gold, {"answer_start": 82, "text": "golden statue"}, gold], "question": "What is there?",
         "id": "q2", "is_impossible": False},
        {"plausible_answers": [{"answer_start": 34, "text": "Catholic"}], "question": "What is not there?",
         "id": "q3", "answers": [], "is_impossible": True},
        {"plausible_answers": [{"answer_start": 82, "text": "golden statue"}], "question": "Who is not there?",
         "id": "q4", "is_impossible": True},  # no answers at all: still unanswerable
    ]))
    out = fetch(DataSource(type="qa", source=str(d)), "qa", 0)
    assert CONTEXT[82:95] == "golden statue"
    assert out["train"] == [{"id": "q1", "title": "University_of_Notre_Dame", "context": CONTEXT,
                             "question": "What character?", "answers": {"text": ["Catholic"], "answer_start": [34]}}]
    assert out["validation"][0]["answers"] == {"text": ["Catholic", "golden statue", "Catholic"],
                                               "answer_start": [34, 82, 34]}
    assert [(r["id"], r["answers"]) for r in out["validation"][1:]] == [
        ("q3", {"text": [], "answer_start": []}), ("q4", {"text": [], "answer_start": []})]


def qa_source(tmp_path, starts: list, policy: str = "error", text: str = "golden statue") -> DataSource:
    """A SQuAD v1.1 directory whose dev file has one question per answer_start in ``starts``."""
    d = tmp_path / f"squad-{policy}"
    good = [{"answers": [{"answer_start": 82, "text": "golden statue"}], "question": "What?", "id": "ok"}]
    write(d / "train-v1.1.json", squad_doc("1.1", [{**good[0], "question": "What is atop?"}]))  # not a dev question
    qas = [{"answers": [{"answer_start": s, "text": text}], "question": f"What {i}?", "id": f"q{i}"}
           for i, s in enumerate(starts)]
    write(d / "dev-v1.1.json", squad_doc("1.1", good + qas))
    return DataSource(type="qa", source=str(d), answer_mismatch=policy)


@pytest.mark.parametrize("start, problem", [
    (83, r"answer_start 83 points at 'olden statue\.'"),
    (-3, "answer_start -3 is negative"),
    (90, r"answer_start 90 runs past the context's end \(96 characters\)"),
    (None, "answer_start None is not an offset"),
])
def test_qa_offset_error_names_file_question_and_place(tmp_path, start, problem):
    with pytest.raises(PipelineError, match=problem) as excinfo:
        fetch(qa_source(tmp_path, [start]), "qa", 0)
    message = one_line_error(excinfo)
    assert "prepare.datasets.qa: " in message and "dev-v1.1.json: data[0].paragraphs[0].qas[1] (id 'q0')" in message
    assert "the text occurs at [82]" in message and "answer_mismatch: fix" in message


def test_qa_offset_fix_moves_to_nearest_occurrence(tmp_path):
    out, counts = fetch_counted(qa_source(tmp_path, [83, -3, 90, None], "fix"), "qa", 0)
    assert [r["answers"]["answer_start"] for r in out["validation"]] == [[82]] * 5
    assert counts["validation"] == {"rows": 5, "answers_fixed": 4, "answer_mismatch_dropped": 0, "bad_rows_dropped": 0,
                                    "duplicates_of_train": 0, "duplicate_ids_renamed": 0}
    # Nearest of two occurrences of "the " (17 and 59): given 60 -> 59; given None -> the first.
    out, _ = fetch_counted(qa_source(tmp_path / "two", [60, None, 17], "fix", text="the "), "qa", 0)
    assert [r["answers"]["answer_start"][0] for r in out["validation"][1:]] == [59, 17, 17]
    assert CONTEXT[17:21] == CONTEXT[59:63] == "the "


def test_qa_offset_drop_counts_rows(tmp_path):
    out, counts = fetch_counted(qa_source(tmp_path, [83, 82, None, -1, 500], "drop"), "qa", 0)
    assert [r["id"] for r in out["validation"]] == ["ok", "q1"]
    assert counts["validation"] == {"rows": 2, "answers_fixed": 0, "answer_mismatch_dropped": 4, "bad_rows_dropped": 0,
                                    "duplicates_of_train": 0, "duplicate_ids_renamed": 0}


def test_qa_absent_answer_per_policy(tmp_path):
    with pytest.raises(PipelineError, match=r"answer 1 'silver statue'.*does not occur in the context"):
        fetch(qa_source(tmp_path, [82], "error", text="silver statue"), "qa", 0)
    with pytest.raises(PipelineError, match=r"qas\[1\] \(id 'q0'\): answer 1 'silver statue' does not occur.*bad_rows"):
        fetch(qa_source(tmp_path, [82], "fix", text="silver statue"), "qa", 0)
    out, counts = fetch_counted(qa_source(tmp_path, [82], "drop", text="silver statue"), "qa", 0)
    assert len(out["validation"]) == 1 and counts["validation"]["answer_mismatch_dropped"] == 1


def test_flat_qa_jsonl_null_offset_names_line(tmp_path):
    d = tmp_path / "flat"
    row = {"id": "a", "title": "t", "context": CONTEXT, "question": "q?",
           "answers": {"text": ["Catholic"], "answer_start": [34]}}
    write(d / "train.jsonl", json.dumps(row) + "\n")
    bad = {**row, "id": "b", "answers": {"text": ["Catholic"], "answer_start": [None]}}
    write(d / "validation.jsonl", json.dumps(row) + "\n\n" + json.dumps(bad) + "\n")
    with pytest.raises(PipelineError, match=r"validation.jsonl: line 3 \(id 'b'\): answer 1 'Catholic': answer_start"):
        fetch(DataSource(type="qa", source=str(d)), "qa", 0)


# -------------------------------------------------------------------------------------------- text
WIKI = (" \n = Valkyria Chronicles III = \n \n Senjō no Valkyria 3 is a tactical role @-@ playing video game . \n"
        " \n = = Gameplay = = \n \n As with previous games , the player leads a squad . \n")


def test_wikitext_raw_files_drop_blank_lines_and_headings(tmp_path):
    d = tmp_path / "wikitext-2-raw"
    write(d / "wiki.train.raw", WIKI)
    write(d / "wiki.valid.raw", " \n = Tower Building = \n \n The building is tall . \n")
    write(d / "wiki.test.raw", " \n Not read . \n")
    out, counts = fetch_counted(DataSource(type="text", source=str(d)), "corpus", 0)
    assert out["train"] == [{"text": "Senjō no Valkyria 3 is a tactical role @-@ playing video game ."},
                            {"text": "As with previous games , the player leads a squad ."}]
    assert out["validation"] == [{"text": "The building is tall ."}]
    assert counts["train"] == {"rows": 2, "blank_lines_dropped": 4, "headings_dropped": 2, "bad_rows_dropped": 0,
                               "leakage_dropped": 0}


def test_txt_files_in_split_directories_concatenate_in_name_order(tmp_path):
    d = tmp_path / "books"
    write(d / "train" / "b.txt", "second book .\n")
    write(d / "train" / "a.txt", "first book .\r\n\r\nstill first .\n")
    write(d / "valid" / "c.txt", "held out .")
    out = fetch(DataSource(type="text", source=str(d), train_size=2), "corpus", 0)
    assert [r["text"] for r in out["train"]] == ["first book .", "still first ."]
    assert out["validation"] == [{"text": "held out ."}]


def test_split_names():
    names = {"train.tsv": "train", "dev.tsv": "validation", "dev_matched.tsv": "validation",
             "dev_mismatched.tsv": "validation_mismatched", "train-v1.1.json": "train", "dev-v2.0.json": "validation",
             "wiki.train.tokens": "train", "wiki.valid.raw": "validation", "val.csv.gz": "validation",
             "validation-00000-of-00001.parquet": "validation", "validation_mismatched.jsonl": "validation_mismatched",
             "test.tsv": None, "dev_ids.tsv": None, "msr_paraphrase_train.txt": None, "wiki.test.raw": None}
    assert {n: split_of(n) for n in names} == names


# ---------------------------------------------------------------------------- CSV / JSON / Parquet
def test_csv_float_labels_without_idx_and_gz(tmp_path):
    d = tmp_path / "csv"
    write(d / "train.csv", 'sentence,label\n"good, really good",1.0\nawful,0.0\n"a ""quoted"" word",1\n')
    (d / "dev.csv.gz").write_bytes(gzip.compress(b"sentence,label\nfine,1.0\n"))
    out = fetch(DataSource(type="classification", source=str(d)), "cls", 0)
    assert out["train"] == [{"sentence": "good, really good", "label": 1, "idx": 0},
                            {"sentence": "awful", "label": 0, "idx": 1},
                            {"sentence": 'a "quoted" word', "label": 1, "idx": 2}]
    assert out["validation"] == [{"sentence": "fine", "label": 1, "idx": 0}]
    assert all(type(r["label"]) is int for r in out["train"])


def test_label_names_and_json_with_top_level_field(tmp_path):
    d = tmp_path / "named"
    write(d / "train.json", json.dumps({"version": "0.1", "data": [
        {"sentence": "lovely", "label": "positive"}, {"sentence": "dire", "label": "negative"}]}))
    write(d / "dev.json", json.dumps([{"sentence": "ok", "label": "positive", "idx": 7}]))
    src = DataSource(type="classification", source=str(d), label_names=["negative", "positive"])
    out = fetch(src, "cls", 0)
    assert out["train"] == [{"sentence": "lovely", "label": 1, "idx": 0}, {"sentence": "dire", "label": 0, "idx": 1}]
    assert out["validation"] == [{"sentence": "ok", "label": 1, "idx": 7}]
    write(d / "dev.json", json.dumps([{"sentence": "ok", "label": "neutral"}]))
    with pytest.raises(PipelineError, match=r"dev.json: row 1: label 'neutral' is not a number; expected one of "
                                            r"\['negative', 'positive'\]"):
        fetch(src, "cls", 0)


def test_parquet_float_labels_and_hub_style_shards(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = tmp_path / "pq"
    d.mkdir()
    for shard, (sentences, labels) in enumerate([(["a", "b"], [1.0, 0.0]), (["c"], [1.0])]):
        pq.write_table(pa.table({"sentence": sentences, "label": labels}), d / f"train-0000{shard}-of-00002.parquet")
    dev = pa.table({"sentence1": ["x"], "sentence2": ["y"], "label": [2.5]})
    pq.write_table(dev, d / "validation-00000-of-00001.parquet")
    out = fetch(DataSource(type="classification", source=str(d)), "cls", 0)
    assert out["train"] == [{"sentence": s, "label": y, "idx": i} for i, (s, y) in enumerate(zip("abc", [1, 0, 1]))]
    assert out["validation"] == [{"sentence1": "x", "sentence2": "y", "label": 2.5, "idx": 0}]  # a score stays a float


def test_same_split_in_two_formats_is_refused(tmp_path):
    d = tmp_path / "dup"
    write(d / "train.jsonl", '{"sentence": "a", "label": 0}\n')
    (d / "train.jsonl.gz").write_bytes(gzip.compress(b'{"sentence": "a", "label": 0}\n'))
    write(d / "dev.jsonl", '{"sentence": "a", "label": 0}\n')
    with pytest.raises(PipelineError, match=r"the train split has files of different formats \(train.jsonl, train.js"):
        fetch(DataSource(type="classification", source=str(d)), "cls", 0)


# --------------------------------------------------------------------------------------- bad files
def test_tsv_row_missing_a_field_in_the_middle(tmp_path):
    files = {"train.tsv": tsv("sentence\tlabel", "good film \t1", "a line without its label", "bad film \t0"),
             "dev.tsv": tsv("sentence\tlabel", "fine \t1")}
    with pytest.raises(PipelineError) as excinfo:
        fetch(glue_source(tmp_path, "sst2", files), "cls", 0)
    assert one_line_error(excinfo) == (
        f"prepare.datasets.cls: {tmp_path}/sst2/train.tsv: line 3: 1 fields, expected 2 (sentence, label) "
        "(prepare.datasets.cls.bad_rows: drop drops such rows)")
    out, counts = fetch_counted(glue_source(tmp_path, "sst2", files, bad_rows="drop"), "cls", 0)
    assert [r["idx"] for r in out["train"]] == [0, 2] and counts["train"] == {"rows": 2, "bad_rows_dropped": 1,
                                                                                  "leakage_dropped": 0}


def test_jsonl_row_missing_a_column_or_label_in_the_middle(tmp_path):
    d = tmp_path / "j"
    write(d / "dev.jsonl", '{"sentence": "ok", "label": 1}\n')
    write(d / "train.jsonl", '{"sentence": "ok", "label": 1}\n{"text": "no sentence", "label": 0}\n')
    with pytest.raises(PipelineError, match=r"j/train.jsonl: line 2: missing 'sentence' \(prepare.datasets.cls.bad_"):
        fetch(DataSource(type="classification", source=str(d)), "cls", 0)
    write(d / "train.jsonl", '{"sentence": "ok", "label": 1}\n{"sentence": "  ", "label": 0}\n')
    with pytest.raises(PipelineError, match=r"train.jsonl: line 2: empty 'sentence'"):
        fetch(DataSource(type="classification", source=str(d)), "cls", 0)
    write(d / "train.jsonl", '{"sentence": "ok", "label": 1}\n{"sentence": "fine", "label": 3}\n')
    with pytest.raises(PipelineError, match=r"train.jsonl: line 2: label 3 is not in \[0, 2\)"):
        fetch(DataSource(type="classification", source=str(d), glue="sst2"), "cls", 0)


def test_non_utf8_file_names_file_and_line(tmp_path):
    d = tmp_path / "latin"
    write(d / "dev.csv", "sentence,label\nok,1\n")
    (d / "train.csv").write_bytes("sentence,label\nok,1\ncaf\u00e9 au lait,0\n".encode("latin-1"))
    with pytest.raises(PipelineError) as excinfo:
        fetch(DataSource(type="classification", source=str(d)), "cls", 0)
    assert one_line_error(excinfo) == (
        f"prepare.datasets.cls: {d}/train.csv: line 3: not UTF-8 (byte 0xe9); convert the file to UTF-8")


def test_missing_split_names_what_was_looked_for(tmp_path):
    d = tmp_path / "only-train"
    write(d / "train.csv", "sentence,label\nok,1\n")
    with pytest.raises(PipelineError) as excinfo:
        fetch(DataSource(type="classification", source=str(d)), "cls", 0)
    assert one_line_error(excinfo) == (
        f"prepare.datasets.cls: {d}: no validation file (looked for <name>, <name>-*, *.<name> with <name> "
        "validation/valid/dev/val/validation_matched/dev_matched and extension "
        ".tsv/.csv/.json/.jsonl/.parquet/.txt/.raw/.tokens[.gz], or a <name>/ directory); or set "
        "prepare.datasets.cls.validation_from_train: 0.1 to split one off the train rows")


def test_corrupt_gzip_and_parquet_name_the_file(tmp_path):
    d = tmp_path / "corrupt"
    (d / "train.csv.gz").parent.mkdir()
    (d / "train.csv.gz").write_bytes(gzip.compress(b"sentence,label\nok,1\n")[:-6])
    (d / "dev.parquet").write_bytes(b"PAR1 but not really")
    with pytest.raises(PipelineError, match=r"corrupt/train.csv.gz: cannot read: "):  # train is read first
        fetch(DataSource(type="classification", source=str(d)), "cls", 0)
    (d / "train.csv.gz").write_bytes(gzip.compress(b"sentence,label\nok,1\n"))
    with pytest.raises(PipelineError, match=r"corrupt/dev.parquet: not a readable Parquet file"):
        fetch(DataSource(type="classification", source=str(d)), "cls", 0)


@pytest.mark.parametrize("bad, message", [
    ({"glue": "sst3"}, "glue must be one of cola, sst2"),
    ({"glue": "mnli", "label_names": ["a", "b", "c"]}, "GLUE task 'mnli' has its own labels"),
    ({"label_names": ["a", "a"]}, "label_names must be distinct"),
    ({"answer_mismatch": "fix"}, "answer_mismatch applies only to qa data"),
])
def test_source_params_are_checked(bad, message):
    with pytest.raises(ValueError, match=message):
        DataSource(type="classification", source="/data", **bad)


# ---------------------------------------------------------------------------------------- the stage
def test_prepare_stage_writes_metrics_and_nothing_on_a_bad_row(tmp_path, monkeypatch, capsys):
    from stages import prepare

    d = tmp_path / "raw"
    write(d / "train.csv", "sentence,label\ngood,1\n,0\nbad,0\n")
    write(d / "dev.csv", "sentence,label\nfine,1\n")
    params = {"prepare": {"seed": 0, "tokenizer": "synthetic", "datasets": {
        "cls": {"type": "classification", "source": str(d), "bad_rows": "drop"}}}}
    write(tmp_path / "params.yaml", json.dumps(params))  # JSON is YAML
    monkeypatch.chdir(tmp_path)
    assert prepare.main(["data", "--metrics", "metrics/prepare.json"]) == 0
    metrics = json.loads((tmp_path / "metrics" / "prepare.json").read_text())
    assert metrics == {"cls": {"train": {"rows": 2, "bad_rows_dropped": 1, "leakage_dropped": 0},
                               "validation": {"rows": 1, "bad_rows_dropped": 0, "duplicates_of_train": 0}}}
    assert (tmp_path / "data" / "cls" / "train.jsonl").read_text().count("\n") == 2
    capsys.readouterr()

    params["prepare"]["datasets"]["cls"]["bad_rows"] = "error"
    write(tmp_path / "params.yaml", json.dumps(params))
    assert prepare.main(["data2", "--metrics", "metrics/prepare2.json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [(f"error: prepare: prepare.datasets.cls: {d}/train.csv: line 3: empty 'sentence' "
                    "(prepare.datasets.cls.bad_rows: drop drops such rows)")]
    assert not (tmp_path / "data2").exists() and not (tmp_path / "metrics" / "prepare2.json").exists()
