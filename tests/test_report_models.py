"""Cards describe each model from its own config.json and what its stage did, never from params that were not
used; a teacher below its student is flagged; small numbers keep significant digits (issue 25 items 4, 7)."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import BertForSequenceClassification

from pipeline.core.errors import PipelineError
from pipeline.core.files import atomic_dir
from pipeline.models.store import save_model
from pipeline.distill.kd import weaker_teacher
from pipeline.report.card import CardInputs, model_card, teacher_note
from pipeline.report.collect import frame
from pipeline.report.describe import architecture, read_configs, training_table
from pipeline.report.plotdata import layers_frame
from test_early_errors import cls_split, run  # noqa: F401 (fixture)
from test_stage_errors import workdir  # noqa: F401 (fixture)

MINILM = {"model_type": "bert", "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
          "intermediate_size": 1536, "vocab_size": 30522}
# The teacher's params as the stage records them: arch sizes are the unused defaults when base is a checkpoint.
TEACHER_PARAMS = {"task": {"type": "classification"},
                  "teacher": {"arch": {"base": "models/merged", "type": "bert", "hidden_size": 128,
                                       "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 512,
                                       "seed": 0},
                              "train": {"epochs": 4, "batch_size": 32, "lr": 5e-4, "seed": 0}}}


def _variants(scores: dict[str, float]):
    return frame([{"variant": n, "primary_metric": "accuracy", "accuracy": a, "size_bytes": 1_000_000,
                   "latency_ms_p50": 1.0} for n, a in scores.items()], index="variant")


def _row(card: str, section: str, name: str) -> list[str]:
    text = card.split(f"## {section}\n")[1].split("\n## ")[0]
    line = next(x for x in text.splitlines() if x.startswith(f"| {name} |"))
    return [c.strip() for c in line.strip("|").split("|")][1:]


def _card(variants, details, configs=None):
    return model_card("cls", variants, details, layers_frame(details), {}, {"size": [], "speedup": []},
                      CardInputs(configs=configs or {}))


def test_the_teacher_is_described_from_its_config_not_from_unused_params():
    details = {"finetune": {"artifact": {"stage": "finetune", "method": "full", "format": "dense"}},
               "teacher": {"artifact": {"stage": "teacher", "method": "models/merged", "format": "dense",
                                        "params": TEACHER_PARAMS}}}
    card = _card(_variants({"finetune": 0.85, "teacher": 0.9}), details,
                 {"teacher": MINILM, "finetune": {**MINILM, "id2label": {"0": "negative", "1": "positive"}}})
    what, model = _row(card, "Variants", "teacher")
    assert what == "teacher, trained from `models/merged`, format dense" and "method models/merged" not in card
    assert model == "bert, layers 6, hidden 384, heads 12, FFN 1536, vocab 30522"
    assert _row(card, "Variants", "finetune")[1].endswith("labels 0 = negative, 1 = positive")
    settings = _row(card, "Training settings", "teacher")[-1]
    assert settings == "teacher.arch.base=models/merged, teacher.arch.seed=0"  # not hidden_size=128 ... of the defaults
    assert "128" not in card.split("## Training settings")[1].split("## ")[0]


def test_a_scratch_teacher_keeps_its_sizes_as_settings():
    params = json.loads(json.dumps(TEACHER_PARAMS))
    params["teacher"]["arch"]["base"] = "scratch"
    table = training_table(["teacher"], {"teacher": {"artifact": {"params": params}}})
    assert "arch.hidden_size=128" in table.at["teacher", "other settings"]


def test_pruned_shapes_come_from_the_config():
    pruned = {**MINILM, "heads_per_layer": [12, 6, 6, 12, 12, 3], "intermediate_per_layer": [1536] * 6}
    line = architecture(pruned)
    assert "heads per layer [12, 6, 6, 12, 12, 3]" in line and "intermediate per layer" not in line  # uniform FFN
    assert architecture(None) == "-"
    assert "labels" not in architecture({**MINILM, "id2label": {"0": "LABEL_0", "1": "LABEL_1"}})


def test_read_configs_reads_each_artifact_and_names_a_bad_one(tmp_path):
    (tmp_path / "cls" / "finetune").mkdir(parents=True)
    (tmp_path / "cls" / "finetune" / "config.json").write_text(json.dumps(MINILM))
    (tmp_path / "cls" / "onnx-finetune").mkdir()  # no config.json: nothing said
    assert read_configs(tmp_path, "cls", ["finetune", "onnx-finetune"]) == {"finetune": MINILM}
    assert read_configs(None, "cls", ["finetune"]) == {}
    (tmp_path / "cls" / "finetune" / "config.json").write_text("{")
    with pytest.raises(PipelineError, match="cls/finetune/config.json: not valid JSON"):
        read_configs(tmp_path, "cls", ["finetune"])


@pytest.mark.parametrize("teacher, flagged", [(0.818, True), (0.85, False), (0.9, False)])
def test_a_teacher_below_its_student_is_flagged(teacher, flagged):
    variants = _variants({"finetune": 0.85, "teacher": teacher})
    note = teacher_note(variants)
    assert (note is not None) == flagged
    card = _card(variants, {})
    assert ("teacher scores below its student" in card) == flagged
    if flagged:
        assert "accuracy 0.8180 vs finetune 0.8500" in note
    assert teacher_note(_variants({"teacher": 0.1})) is None  # no student measured: nothing to compare


def test_a_tiny_logit_error_keeps_significant_digits():
    details = {"onnx-finetune": {"artifact": {"stage": "export", "method": "onnx", "format": "onnx",
                                              "results": {"logit_max_abs_error": 2.1e-06}}},
               "quantize": {"artifact": {"stage": "quantize", "format": "dynamic_int8",
                                         "results": {"logit_max_abs_error": 0.0503}}}}
    card = _card(_variants({"onnx-finetune": 0.85, "quantize": 0.84}), details)
    assert _row(card, "Variants", "onnx-finetune")[0].endswith("max logit error vs its source 2.1e-06")
    assert _row(card, "Variants", "quantize")[0].endswith("max logit error vs its source 0.0503")


@pytest.mark.parametrize("teacher, student, warned", [(0.818, 0.85, True), (0.9, 0.85, False), (None, 0.85, False)])
def test_the_distill_stage_warns_of_a_teacher_below_its_student(teacher, student, warned):
    meta = {"results": {} if teacher is None else {"accuracy": teacher}}
    note = weaker_teacher(meta, {"accuracy": student}, "accuracy")
    assert (note is not None) == warned
    if warned:
        assert "teacher scores below its student (accuracy 0.8180 vs 0.8500" in note


def test_a_tiny_share_of_quantization_zeros_is_not_printed_as_zero():
    variants = frame([{"variant": n, "primary_metric": "accuracy", "accuracy": 0.85, "size_bytes": 1_000_000,
                       "latency_ms_p50": 1.0, "pruned_sparsity": 0.0, "quantization_zero_fraction": q}
                      for n, q in (("finetune", 0.0), ("quantize", 2.4e-05))], index="variant")
    card = _card(variants, {})
    header = next(x for x in card.split("## Results\n")[1].splitlines() if x.startswith("|"))
    column = [c.strip() for c in header.strip("|").split("|")].index("quantization zeros") - 1
    assert _row(card, "Results", "quantize")[column] == "2.4e-05"
    assert _row(card, "Results", "finetune")[column] == "0"


@pytest.mark.parametrize("teacher_score, warned", [(0.818, True), (0.9, False)])
def test_the_distill_stage_logs_the_warning(workdir, cls_split, tiny_config, tokenizer, capsys, teacher_score,
                                            warned):
    """The stage with its training replaced by a fixed result (student accuracy 0.85)."""
    tokenizer.save_pretrained(workdir / "tok")
    paths = {}
    for name, meta in (("prune-magnitude", {"stage": "prune", "method": "magnitude"}),
                       ("teacher", {"stage": "teacher", "method": "scratch", "results": {"accuracy": teacher_score}})):
        torch.manual_seed(0)
        paths[name] = workdir / "models" / "cls" / name
        with atomic_dir(paths[name]) as tmp:
            save_model(tmp, BertForSequenceClassification(tiny_config), workdir / "tok",
                       {**meta, "head": "classification", "format": "dense", "task": "cls"})
    out = workdir / "models" / "cls" / "distill-magnitude"
    code, err = run("distill", ["--task", "cls", str(paths["prune-magnitude"]), str(paths["teacher"]), "data/cls",
                                str(out)], capsys, distill_student=lambda *a, **k: ([], {"accuracy": 0.85}))
    assert code == 0, err
    lines = [x for x in err if "teacher scores below its student" in x]
    assert len(lines) == int(warned)
    if warned:
        assert lines[0].startswith("distill cls: warning: ") and "accuracy 0.8180 vs 0.8500" in lines[0]
