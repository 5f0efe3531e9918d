"""Class names (issue 25 item 5): written by prepare from a data set's ``label_names`` or its GLUE task's official
names, put into the fine-tuned model's config.json as ``id2label``/``label2id`` and kept by later artifacts."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM

from pipeline.core.errors import PipelineError
from pipeline.core.files import atomic_dir
from pipeline.data.labels import GLUE_LABEL_NAMES, LABELS_FILE, name_labels_, read_labels, write_labels
from pipeline.data.params import DataSource
from pipeline.data.glue_tsv import LAYOUTS
from pipeline.models.store import save_model
from pipeline.tasks.classification import ClassificationParams
from test_stage_errors import cls_data, edit_params, run_stage, workdir  # noqa: F401 (fixtures)


def _src(**kw) -> DataSource:
    return DataSource(type="classification", source="files/sst2", **kw)


def test_glue_names_cover_every_glue_task_with_its_class_count():
    assert set(GLUE_LABEL_NAMES) == set(LAYOUTS)
    for task, layout in LAYOUTS.items():
        assert len(GLUE_LABEL_NAMES[task]) == (0 if layout.regression else layout.num_labels), task
        if layout.label_names:  # the files spell the labels out: the same names in the same order
            assert GLUE_LABEL_NAMES[task] == layout.label_names


@pytest.mark.parametrize("src, written", [(_src(glue="sst2"), ["negative", "positive"]),
                                          (_src(label_names=["bad", "good"]), ["bad", "good"]),
                                          (_src(glue="sst2", label_names=["neg", "pos"]), ["neg", "pos"]),
                                          (_src(), None), (_src(glue="stsb"), None)])
def test_prepare_writes_the_names_it_knows_and_nothing_else(tmp_path, src, written):
    write_labels(tmp_path, src)
    path = tmp_path / LABELS_FILE
    assert (json.loads(path.read_text())["label_names"] if path.exists() else None) == written


def test_names_come_from_the_data_else_from_the_tasks_glue(tmp_path):
    assert read_labels(tmp_path, "mnli") == ("entailment", "neutral", "contradiction")
    assert read_labels(tmp_path) == ()
    (tmp_path / LABELS_FILE).write_text(json.dumps({"label_names": ["bad", "good"]}))
    assert read_labels(tmp_path, "sst2") == ("bad", "good")  # the data set's own names win


@pytest.mark.parametrize("content", ["{", "[]", '{"label_names": []}', '{"label_names": ["a", "a"]}',
                                     '{"label_names": ["a", 1]}'])
def test_a_bad_labels_file_is_one_error_naming_it(tmp_path, content):
    (tmp_path / LABELS_FILE).write_text(content)
    with pytest.raises(PipelineError, match=f"{LABELS_FILE}: expected"):
        read_labels(tmp_path)


def test_names_go_into_the_config_and_must_match_the_head(tmp_path):
    config = BertConfig(num_labels=3)
    name_labels_(config, tmp_path, ClassificationParams(type="classification", glue="mnli", num_labels=3))
    assert config.id2label == {0: "entailment", 1: "neutral", 2: "contradiction"}
    assert config.label2id == {"entailment": 0, "neutral": 1, "contradiction": 2}
    config = BertConfig(num_labels=2)
    name_labels_(config, tmp_path, ClassificationParams(type="classification"))  # no names: defaults stay
    assert config.id2label == {0: "LABEL_0", 1: "LABEL_1"}
    (tmp_path / LABELS_FILE).write_text(json.dumps({"label_names": ["a", "b", "c"]}))
    with pytest.raises(PipelineError, match=r"3 label names \['a', 'b', 'c'\] for a head of 2 classes"):
        name_labels_(config, tmp_path, ClassificationParams(type="classification"))


def _merged(workdir, tokenizer, tiny_config):
    tok = workdir / "tok"
    tokenizer.save_pretrained(tok)
    torch.manual_seed(0)
    with atomic_dir(workdir / "models" / "merged") as tmp:
        save_model(tmp, BertForMaskedLM(tiny_config), tok, {"stage": "merge", "head": "mlm", "format": "dense"})
    return workdir / "models" / "merged"


def _labels(artifact) -> tuple[dict, dict]:
    config = json.loads((artifact / "config.json").read_text())
    return config.get("id2label"), config.get("label2id")


def test_finetune_writes_the_names_and_later_artifacts_keep_them(workdir, cls_data, tokenizer, tiny_config, capsys):
    merged = _merged(workdir, tokenizer, tiny_config)
    (cls_data / "train.jsonl").write_text((cls_data / "validation.jsonl").read_text())
    (cls_data / LABELS_FILE).write_text(json.dumps({"label_names": ["negative", "positive"]}))
    edit_params(workdir, lambda d: d["finetune"].update(cls={"epochs": 1, "batch_size": 4, "lr": 1e-3, "seed": 0}))
    models = workdir / "models" / "cls"
    code, err = run_stage("finetune", ["--task", "cls", str(merged), "data/cls", str(models / "finetune")], capsys)
    assert code == 0, err
    expected = ({"0": "negative", "1": "positive"}, {"negative": 0, "positive": 1})
    assert _labels(models / "finetune") == expected
    for stage, argv in (("quantize", ["--task", "cls", "--scheme", "dynamic_int8", str(models / "finetune"), "data/cls", str(models / "quantize")]),
                        ("prune", ["--task", "cls", "--method", "magnitude", str(models / "finetune"), "data/cls",
                                   str(models / "prune-magnitude")])):
        code, err = run_stage(stage, argv, capsys)
        assert code == 0, err
    assert _labels(models / "quantize") == _labels(models / "prune-magnitude") == expected
