"""GLUE tasks: the task table, params, loading from local and (faked) hub sources, scoring, and learning
a pair-regression and a pair-classification task end to end on a tiny BERT."""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest
import torch
import yaml
from sklearn.metrics import f1_score as sk_f1
from sklearn.metrics import matthews_corrcoef as sk_mcc
from transformers import BertForSequenceClassification

from conftest import WORDS
from tools.code_deps import ROOT
from pipeline import schema, tasks
from pipeline.config import loader
from pipeline.config.args import TrainArgs
from pipeline.core.errors import PipelineError
from pipeline.data.io import PAIR_COLUMNS, check_rows, write_jsonl
from pipeline.data.params import DataSource
from pipeline.data.sources import fetch, hub_splits
from pipeline.evaluation.speed import latency_inputs
from pipeline.tasks import glue
from pipeline.tasks.classification import ClassificationParams
from pipeline.tasks.qa import QAParams
from pipeline.train.supervised import train_task


def task(name: str, **kw) -> tasks.Task:
    return tasks.get(ClassificationParams(max_length=32, num_labels=glue.TASKS[name].num_labels, glue=name, **kw))


# ----------------------------------------------------------------------------------------- the table
def test_table_covers_glue_and_agrees_with_params():
    assert set(glue.TASKS) == {"cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli"}
    assert {n for n, t in glue.TASKS.items() if t.num_labels != 2} == {"stsb", "mnli"}
    for name, t in glue.TASKS.items():
        assert t.primary in t.metrics and set(t.metrics) <= set(glue.METRICS)
        # prepare accepts every task's columns: the single-sentence schema or a known pair
        assert t.text_columns == ("sentence",) or t.text_columns in PAIR_COLUMNS
        assert "validation" in t.eval_splits and t.eval_splits["validation"] == ""
    assert glue.TASKS["stsb"].regression and not glue.TASKS["mnli"].regression
    assert glue.TASKS["cola"].primary == "matthews_correlation"
    assert set(glue.TASKS["mrpc"].metrics) == set(glue.TASKS["qqp"].metrics) == {"accuracy", "f1"}
    assert glue.TASKS["mnli"].eval_splits == {"validation": "", "validation_mismatched": "_mismatched"}


def test_primary_metric_per_task():
    assert tasks.get(ClassificationParams()).primary_metric == "accuracy"
    assert task("cola").primary_metric == "matthews_correlation"
    assert task("stsb").primary_metric == "pearson"
    assert tasks.get(QAParams()).primary_metric == "f1"
    # without a GLUE task: SST-2 columns, accuracy + F1; one output is scored as a regression
    assert glue.spec("", 3).metrics == ("accuracy", "f1")
    assert glue.spec("", 1).metrics == ("pearson", "spearmanr")


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"glue": "mnly", "num_labels": 3}, "'tasks.cls': glue must be one of"),
        ({"glue": "mnli"}, "glue 'mnli' has 3 label(s) (1 = regression): set num_labels: 3, got 2"),
        ({"glue": "stsb", "num_labels": 2}, "set num_labels: 1"),
        ({"glue": 3}, "'tasks.cls.glue' must be str"),
    ],
)
def test_bad_glue_params_name_the_key(tmp_path, entry, message):
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    data["tasks"]["cls"].update(entry)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PipelineError) as err:
        loader.load({"tasks.cls": schema.section_type("tasks.cls", path)}, file=path)
    assert message in str(err.value)


def test_glue_on_a_qa_task_is_rejected(tmp_path):
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    data["tasks"]["qa"]["glue"] = "rte"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PipelineError, match="unknown key 'tasks.qa.glue'"):
        loader.load({"tasks.qa": schema.section_type("tasks.qa", path)}, file=path)


# -------------------------------------------------------------------------------------------- scoring
def test_score_regression_uses_the_single_output():
    logits = np.array([[0.1], [0.9], [0.5], [0.7]])
    out = glue.score(glue.TASKS["stsb"], logits, [0.0, 4.0, 2.0, 1.5])
    # centred preds (-.45, .35, -.05, .15), labels (-1.875, 2.125, .125, -.375)
    dp, dy = np.array([-0.45, 0.35, -0.05, 0.15]), np.array([-1.875, 2.125, 0.125, -0.375])
    assert out["pearson"] == pytest.approx(dp @ dy / np.sqrt((dp @ dp) * (dy @ dy)))
    assert out["spearmanr"] == pytest.approx(0.8)  # ranks (1,4,2,3) vs (1,4,3,2): 1 - 6*2/(4*15)
    assert set(out) == {"pearson", "spearmanr"}


def test_score_classification_argmax_and_suffix():
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 3.0, 0.0], [1.0, 0.0, 0.0]])
    assert glue.score(glue.TASKS["mnli"], logits, [0, 2, 2, 0], "_mismatched") == {"accuracy_mismatched": 0.75}
    cola = glue.score(glue.TASKS["cola"], logits[:, :2], [1, 0, 1, 0])  # preds 0, 0, 1, 0
    assert cola == {"matthews_correlation": pytest.approx(sk_mcc([1, 0, 1, 0], [0, 0, 1, 0]))}


# ------------------------------------------------------------------------------------- loading & eval
def _pairs(n: int, seed: int, num_labels: int) -> list[tuple[str, str, int]]:
    rng = random.Random(seed)
    return [(" ".join(rng.choices(WORDS, k=4)), " ".join(rng.choices(WORDS, k=3)), rng.randrange(num_labels))
            for _ in range(n)]


def _write_csv(path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _write_json(path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _local_glue_dir(root, name: str):
    """A directory with a GLUE task's files as a user would have them (csv for some, json for others)."""
    d = root / f"raw-{name}"
    d.mkdir()
    g = glue.TASKS[name]
    splits = ["train", *g.eval_splits]
    for i, split in enumerate(splits):
        rows = []
        for j, (a, b, label) in enumerate(_pairs(12, i, max(g.num_labels, 2))):
            row = {g.text_columns[0]: a, "label": label * 2.5 if g.regression else label, "idx": j}
            if len(g.text_columns) == 2:
                row[g.text_columns[1]] = b
            rows.append(row)
        if name in ("cola", "mrpc"):
            _write_csv(d / f"{split}.csv", rows)
        else:
            _write_json(d / f"{split}.jsonl", rows)
    return d


def _reference_scores(model, tokenizer, g: glue.GlueTask, rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Predictions row by row with the tokenizer called directly (no pipeline batching/padding)."""
    preds = []
    with torch.no_grad():
        for r in rows:
            texts = [r[c] for c in g.text_columns]
            enc = tokenizer(*texts, truncation=True, max_length=32, return_tensors="pt")
            out = model(**enc).logits[0]
            preds.append(out[0].item() if g.regression else out.argmax().item())
    return np.array(preds), np.array([r["label"] for r in rows])


@pytest.mark.parametrize("name", ["cola", "stsb", "mrpc", "mnli"])
def test_local_files_load_encode_and_score(tmp_path, tiny_config, tokenizer, name):
    g = glue.TASKS[name]
    src = DataSource(type="classification", source=str(_local_glue_dir(tmp_path, name)))
    splits = fetch(src, "cls", 0)
    assert set(splits) == set(["train", *g.eval_splits])
    data = tmp_path / "data"
    data.mkdir()
    for split, split_rows in splits.items():
        write_jsonl(data / f"{split}.jsonl", split_rows)
    t = task(name)
    train = t.rows(data, "train")
    feats = t.train_features(train, tokenizer)
    if g.regression:
        assert all(isinstance(f["labels"], float) for f in feats)
    if len(g.text_columns) == 2:  # pair encoding: [CLS] a [SEP] b [SEP], segment ids 0 then 1
        first = tokenizer(train[0][g.text_columns[0]])["input_ids"]
        assert feats[0]["input_ids"][: len(first)] == first
        assert feats[0]["token_type_ids"].count(1) == len(feats[0]["input_ids"]) - len(first) > 1
        assert 1 in latency_inputs(t, data, tokenizer, 4)["token_type_ids"]

    torch.manual_seed(0)
    tiny_config.num_labels = g.num_labels
    model = BertForSequenceClassification(tiny_config).eval()
    scores, logit = t.evaluate(model, data, tokenizer, batch_size=5, device="cpu")[:2]
    assert logit.shape == (len(t.rows(data, "validation")), g.num_labels)
    expected = {f"{m}{suffix}" for suffix in g.eval_splits.values() for m in g.metrics}
    assert set(scores) == expected
    for split, suffix in g.eval_splits.items():
        preds, labels = _reference_scores(model, tokenizer, g, t.rows(data, split))
        if g.regression:
            assert scores["pearson"] == pytest.approx(np.corrcoef(preds, labels)[0, 1], abs=1e-5)
        elif name == "cola":
            assert scores["matthews_correlation"] == pytest.approx(sk_mcc(labels, preds))
        else:
            assert scores[f"accuracy{suffix}"] == pytest.approx(np.mean(preds == labels))
            if "f1" in g.metrics:
                assert scores["f1"] == pytest.approx(sk_f1(labels, preds, zero_division=0))


def test_hub_glue_mnli_keeps_columns_and_both_validation_splits(monkeypatch):
    import datasets

    def fake_load_dataset(name, config=None, **kw):
        assert (name, config) == ("glue", "mnli")
        make = lambda seed, label: datasets.Dataset.from_list(  # noqa: E731
            [{"premise": a, "hypothesis": b, "label": label if label is not None else y, "idx": i}
             for i, (a, b, y) in enumerate(_pairs(6, seed, 3))])
        return datasets.DatasetDict({
            "train": make(0, None), "validation_matched": make(1, None), "validation_mismatched": make(2, None),
            "test_matched": make(3, -1), "test_mismatched": make(4, -1),
        })

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    out = fetch(DataSource(type="classification", source="hub:glue/mnli", validation_size=4), "cls", 0)
    assert set(out) == {"train", "validation", "validation_mismatched"}
    assert len(out["train"]) == 6 and len(out["validation"]) == len(out["validation_mismatched"]) == 4
    assert out["validation"][0]["premise"] == _pairs(6, 1, 3)[0][0]
    assert out["validation_mismatched"][0]["premise"] == _pairs(6, 2, 3)[0][0]
    assert set(out["train"][0]) == {"premise", "hypothesis", "label", "idx"}


def test_hub_split_names():
    assert hub_splits("glue/cola", ["train", "validation", "test"]) == {"train": "train", "validation": "validation"}
    available = ["train", "validation_matched", "validation_mismatched", "test_matched"]
    assert hub_splits("glue/mnli", available) == {
        "train": "train", "validation": "validation_matched", "validation_mismatched": "validation_mismatched"}


def test_schema_errors_name_the_column_and_file(tmp_path):
    with pytest.raises(PipelineError, match=r"raw/train.jsonl: missing column\(s\) \['sentence2'\]"):
        check_rows([{"sentence1": "a", "label": 0}], "classification", "raw/train.jsonl")
    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(data / "train.jsonl", [{"premise": "the movie", "sentence2": "good", "label": 1, "idx": 0}])
    with pytest.raises(PipelineError, match=r"data/train.jsonl: missing column\(s\) \['hypothesis'\]"):
        task("mnli").rows(data, "train")
    write_jsonl(data / "train.jsonl", [{"premise": "a", "hypothesis": "b", "label": -1, "idx": 0}])
    with pytest.raises(PipelineError, match=r"train.jsonl: row 1: label -1 is not an integer in \[0, 3\)"):
        task("mnli").rows(data, "train")
    write_jsonl(data / "train.jsonl", [{"sentence1": "a", "sentence2": "b", "label": "high", "idx": 0}])
    with pytest.raises(PipelineError, match="label 'high' is not a finite number"):
        task("stsb").rows(data, "train")


def test_missing_local_file_names_the_split(tmp_path):
    d = tmp_path / "raw"
    d.mkdir()
    _write_json(d / "train.jsonl", [{"sentence1": "a", "sentence2": "b", "label": 1}])
    with pytest.raises(PipelineError, match="raw: no validation file \\(looked for"):
        fetch(DataSource(type="classification", source=str(d)), "cls", 0)


# ------------------------------------------------------------------------------- learning end to end
def _count(words: list[str], word: str) -> int:
    return sum(w == word for w in words)


def _generated(n: int, seed: int, kind: str) -> list[dict]:
    """Pairs whose label needs the two segments told apart.

    ``regression``: ``#good(sentence1) - #bad(sentence2)`` (bad in sentence1 and good in sentence2 are
    noise). ``nli``: 0 if the hypothesis has "not", else 1 if the premise has "good", else 2 ("not" in the
    premise and "good" in the hypothesis are noise); about a third each.
    """
    rng = random.Random(seed)
    filler = ["movie", "plot", "the", "was", "very", "and"]
    out = []
    for i in range(n):
        if kind == "regression":
            a, b = (rng.choices(["good", "bad", *filler], k=5) for _ in range(2))
            out.append({"sentence1": " ".join(a), "sentence2": " ".join(b),
                        "label": float(_count(a, "good") - _count(b, "bad")), "idx": i})
            continue
        negated, good = rng.random() < 1 / 3, rng.random() < 1 / 2
        a = rng.choices(filler, k=4) + (["good"] if good else []) + (["not"] if rng.random() < 0.5 else [])
        b = rng.choices(filler, k=4) + (["not"] if negated else []) + (["good"] if rng.random() < 0.5 else [])
        rng.shuffle(a)
        rng.shuffle(b)
        out.append({"premise": " ".join(a), "hypothesis": " ".join(b),
                    "label": 0 if negated else (1 if good else 2), "idx": i})
    return out


@pytest.mark.parametrize("name, kind", [("stsb", "regression"), ("mnli", "nli")])
def test_tiny_bert_learns_a_pair_task(tmp_path, tiny_config, tokenizer, name, kind):
    data = tmp_path / "data"
    data.mkdir()
    train, valid = _generated(1200, 1, kind), _generated(300, 2, kind)
    write_jsonl(data / "train.jsonl", train)
    write_jsonl(data / "validation.jsonl", valid)
    t = task(name)
    torch.manual_seed(0)
    tiny_config.num_labels = t.num_labels
    model = BertForSequenceClassification(tiny_config)
    args = TrainArgs(epochs=8, batch_size=32, lr=3e-3, warmup_ratio=0.1, seed=0)  # 304 steps
    history, final = train_task(model, t, data, tokenizer, args, torch.device("cpu"), name)
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    if kind == "regression":
        # a constant predictor scores 0; measured 0.998 / 0.956
        assert final["pearson"] > 0.9 and final["spearmanr"] > 0.85
    else:
        majority = max(np.bincount([r["label"] for r in valid])) / len(valid)  # 0.40
        assert final["accuracy"] > max(0.9, majority + 0.3)  # measured 1.0


# ------------------------------------------------------------------------------------------- stages
def test_stages_run_mnli_from_local_files(tmp_path, monkeypatch):
    """prepare -> base -> finetune -> evaluate on a local MNLI-schema directory: both validation splits
    are prepared and scored, the metrics file names the GLUE primary metric."""
    from test_stage_errors import stage

    from pipeline.data import synthetic

    monkeypatch.chdir(tmp_path)
    sentences = [r["sentence"] for r in synthetic.generate_classification(100, 3)]  # in the synthetic vocab
    rng = random.Random(0)
    (tmp_path / "raw").mkdir()
    for split, n in [("train", 64), ("validation", 16), ("validation_mismatched", 12)]:
        write_jsonl(tmp_path / "raw" / f"{split}.jsonl", [
            {"premise": rng.choice(sentences), "hypothesis": rng.choice(sentences), "label": i % 3, "idx": i}
            for i in range(n)])
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p["prepare"]["datasets"] = {"cls": {"type": "classification", "source": "raw"}}
    p["model"].update(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    p["tasks"]["cls"].update(glue="mnli", num_labels=3)
    p["finetune"]["cls"].update(epochs=1)
    p["evaluate"].update(latency_repeats=1, latency_warmup=1, latency_batch_size=2)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))

    assert stage("prepare").main(["data"]) in (0, None)
    assert sorted(f.name for f in (tmp_path / "data" / "cls").iterdir()) == [
        "train.jsonl", "validation.jsonl", "validation_mismatched.jsonl"]
    assert stage("base").main(["data/tokenizer", "models/base"]) in (0, None)
    assert stage("finetune").main(["--task", "cls", "models/base", "data/cls", "models/cls/finetune"]) in (0, None)
    assert stage("evaluate").main(["--task", "cls", "--baseline", "models/cls/finetune", "--details", "d.json",
                              "--facts", "f.json", "--speed", "s.json", "--predictions", "p",
                              "models/cls/finetune", "data/cls", "m.json"]) in (0, None)
    result = json.loads((tmp_path / "m.json").read_text())
    assert result["primary_metric"] == "accuracy"
    assert 0 <= result["accuracy"] <= 1 and 0 <= result["accuracy_mismatched"] <= 1
    assert "f1" not in result  # MNLI's official metric is accuracy only (per-class f1_<c> are diagnostics)
    assert {"f1_0", "f1_1", "f1_2", "macro_f1"} <= set(result)  # 3-class diagnostics
