"""Everything checkable from params, data and the input artifacts is checked before any expensive work.

Each test replaces the stage's expensive step (training, importance estimation, merging, quantizing, metric
passes, fetching data) with a tripwire: the stage must stop with one line naming the key (and the artifact or
data file) and exit code 2 before reaching it, and write nothing.
"""

from __future__ import annotations

import sys

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

from conftest import WORDS
from pipeline.core.files import atomic_dir
from pipeline.models.store import save_model
from test_bad_inputs import cls_rows, mlm_artifact, write_split
from test_stage_errors import artifact, edit_params, stage, workdir  # noqa: F401 (fixtures)


def tripwire(*args, **kwargs):
    raise AssertionError("expensive work started before the inputs were checked")


class TrippedContext:
    for_task = staticmethod(tripwire)


def run(name: str, argv: list[str], capsys, **patches):
    """Run stage ``name`` with attributes of the module holding its logic (``pipeline.stages.<name>``)
    replaced (the tripwires) for the run; ``(exit code, stderr lines)``."""
    module = stage(name)
    logic = sys.modules[getattr(module, f"{name}_stage").__module__]
    saved = {attr: getattr(logic, attr) for attr in patches}  # AttributeError: the stage no longer calls it
    try:
        for attr, value in patches.items():
            setattr(logic, attr, value)
        code = module.main(argv)
    finally:
        for attr, value in saved.items():
            setattr(logic, attr, value)
    return code, capsys.readouterr().err.strip().splitlines()


def assert_one_line(code, err, *words):
    assert code == 2 and len(err) == 1, err
    for word in words:
        assert word in err[0], (word, err[0])


def qa_rows(n: int, question: str = "what was the movie ?") -> list[dict]:
    context = "the movie was good and the plot was great"
    return [{"id": f"q{i}", "title": "t", "context": context, "question": question,
             "answers": {"text": ["good"], "answer_start": [context.index("good")]}} for i in range(n)]


@pytest.fixture
def merged(workdir, tiny_config, tokenizer):
    tok = workdir / "tok"
    tokenizer.save_pretrained(tok)
    return mlm_artifact(workdir / "models" / "merged", tiny_config, tok)


@pytest.fixture
def cls_split(workdir):
    write_split(workdir / "data" / "cls", "train", cls_rows(16))
    write_split(workdir / "data" / "cls", "validation", cls_rows(8))
    return workdir / "data" / "cls"


# --------------------------------------------------------------------------------------------- finetune
def test_max_length_beyond_the_models_positions(workdir, merged, cls_split, capsys):
    edit_params(workdir, lambda d: d["tasks"]["cls"].update(max_length=128))  # the tiny model has 64 positions
    out = workdir / "models" / "cls" / "finetune"
    code, err = run("finetune", ["--task", "cls", str(merged), "data/cls", str(out)], capsys, train_task=tripwire)
    assert_one_line(code, err, "tasks.cls.max_length=128", "64 positions", str(merged))
    assert not out.exists()


def test_labels_beyond_num_labels_name_the_key_and_the_file(workdir, merged, cls_split, capsys):
    rows = cls_rows(16)
    rows[5]["label"] = 2
    write_split(cls_split, "train", rows)
    out = workdir / "models" / "cls" / "finetune"
    code, err = run("finetune", ["--task", "cls", str(merged), "data/cls", str(out)], capsys, train_task=tripwire)
    assert_one_line(code, err, "tasks.cls.num_labels", "train.jsonl", "label 2")


def test_a_question_that_leaves_no_room_for_a_window(workdir, merged, capsys):
    long_question = " ".join(["what"] * 40) + " ?"  # 41 tokens: 64 - 3 - 41 = 20 context tokens <= stride 32
    write_split(workdir / "data" / "qa", "train", qa_rows(4) + [{**qa_rows(1, long_question)[0], "id": "q4"}])
    write_split(workdir / "data" / "qa", "validation", qa_rows(4))
    out = workdir / "models" / "qa" / "finetune"
    code, err = run("finetune", ["--task", "qa", str(merged), "data/qa", str(out)], capsys, train_task=tripwire)
    assert_one_line(code, err, "tasks.qa", "train.jsonl", "doc_stride", "max_length")


def test_unanswerable_questions_without_squad_v2(workdir, merged, capsys):
    rows = qa_rows(4)
    rows[2]["answers"] = {"text": [], "answer_start": []}
    write_split(workdir / "data" / "qa", "train", qa_rows(4))
    write_split(workdir / "data" / "qa", "validation", rows)
    out = workdir / "models" / "qa" / "finetune"
    code, err = run("finetune", ["--task", "qa", str(merged), "data/qa", str(out)], capsys, train_task=tripwire)
    assert_one_line(code, err, "tasks.qa.version_2_with_negative", "validation.jsonl", "'q2'")


def test_n_best_size_zero_stops_before_training(workdir, merged, capsys):
    edit_params(workdir, lambda d: d["tasks"]["qa"].update(n_best_size=0))
    write_split(workdir / "data" / "qa", "train", qa_rows(4))
    write_split(workdir / "data" / "qa", "validation", qa_rows(4))
    out = workdir / "models" / "qa" / "finetune"
    code, err = run("finetune", ["--task", "qa", str(merged), "data/qa", str(out)], capsys, train_task=tripwire)
    assert_one_line(code, err, "tasks.qa", "n_best_size")


# ------------------------------------------------------------------------------------ teacher, pretrain, merge
def test_teacher_architecture_shorter_than_the_task(workdir, tokenizer, cls_split, capsys):
    tokenizer.save_pretrained(workdir / "tok")
    edit_params(workdir, lambda d: d["teacher"]["cls"]["arch"].update(
        base="scratch", hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=32))
    out = workdir / "models" / "cls" / "teacher"
    code, err = run("teacher", ["--task", "cls", "tok", "data/cls", str(out)], capsys, train_task=tripwire)
    assert_one_line(code, err, "tasks.cls.max_length=64", "32 positions", "teacher.cls.arch")


def test_mlm_max_length_beyond_the_models_positions(workdir, merged, capsys):
    edit_params(workdir, lambda d: d["pretrain"]["mlm"].update(max_length=100))
    write_split(workdir / "data" / "corpus", "train", [{"text": "the movie was good"}] * 8)
    write_split(workdir / "data" / "corpus", "validation", [{"text": "the plot was bad"}] * 4)
    out = workdir / "models" / "pretrain" / "a"
    code, err = run("pretrain", ["--run", "a", str(merged), "data/corpus", str(out), "m.json"], capsys,
                    OBJECTIVES={"mlm": tripwire, "mlm_nsp": tripwire})
    assert_one_line(code, err, "pretrain.mlm.max_length=100", "64 positions")
    out = workdir / "models" / "merged2"
    code, err = run("merge", [str(merged), str(merged), "--base", str(merged), "--corpus", "data/corpus", "--out",
                              str(out), "--metrics", "m.json"], capsys, merge_states=tripwire)
    assert_one_line(code, err, "pretrain.mlm.max_length=100", "64 positions")
    assert not out.exists() and not (workdir / "m.json").exists()


def test_an_empty_pretraining_shard(workdir, merged, capsys):
    edit_params(workdir, lambda d: d["pretrain"]["mlm"].update(num_shards=4))
    write_split(workdir / "data" / "corpus", "train", [{"text": "the movie was good"}] * 2)  # shards 2, 3 empty
    write_split(workdir / "data" / "corpus", "validation", [{"text": "the plot was bad"}] * 2)
    edit_params(workdir, lambda d: d["pretrain"]["runs"]["a"].update(shard=3))
    code, err = run("pretrain", ["--run", "a", str(merged), "data/corpus", "out", "m.json"], capsys,
                    OBJECTIVES={"mlm": tripwire, "mlm_nsp": tripwire})
    assert_one_line(code, err, "pretrain.runs.a.shard", "no rows")


# ------------------------------------------------------------------------------------------------- prune
@pytest.mark.parametrize("method, change, words", [
    ("heads", {"keep_heads": 8}, ["prune.heads.keep_heads=8", "heads per layer"]),
    ("layers", {"keep_layers": 5}, ["prune.layers.keep_layers=5", "2 layers"]),
    ("nm", {"m": 3, "n": 1}, ["prune.nm.m=3", "input dimension 32"]),
])
def test_pruning_settings_the_model_cannot_take(workdir, artifact, cls_split, capsys, method, change, words):  # noqa: F811
    edit_params(workdir, lambda d: d["prune"][method].update(change))
    out = workdir / "models" / "cls" / f"prune-{method}"
    code, err = run("prune", ["--task", "cls", "--method", method, str(artifact), "data/cls", str(out)], capsys,
                    PruneContext=TrippedContext, trainer=tripwire)
    assert_one_line(code, err, *words)
    assert not out.exists()


# ------------------------------------------------------------------------- num_labels against the artifact
def test_num_labels_differs_from_the_artifacts_head(workdir, artifact, cls_split, capsys):  # noqa: F811
    edit_params(workdir, lambda d: d["tasks"]["cls"].update(num_labels=3))
    words = ["tasks.cls.num_labels", "3", str(artifact), "2 output"]
    out = workdir / "models" / "cls" / "prune-magnitude"
    assert_one_line(*run("prune", ["--task", "cls", "--method", "magnitude", str(artifact), "data/cls", str(out)],
                         capsys, PruneContext=TrippedContext), *words)
    q = workdir / "models" / "cls" / "quantize"
    argv = ["--task", "cls", "--scheme", "dynamic_int8", str(artifact), "data/cls", str(q)]
    assert_one_line(*run("quantize", argv, capsys), *words)
    metrics = workdir / "metrics" / "eval.json"
    assert_one_line(*run("evaluate", ["--task", "cls", "--baseline", str(artifact), "--details", "d.json", "--facts", "f.json", "--speed", "s.json", "--predictions", "p",
                                      str(artifact), "data/cls", str(metrics)], capsys,
                         task_metrics=tripwire), *words)
    assert not out.exists() and not q.exists() and not metrics.exists()


def test_quantize_group_size_that_does_not_divide(workdir, artifact, cls_split, capsys):  # noqa: F811
    edit_params(workdir, lambda d: d["quantize"].update(weight_int8={"group_size": 48}))
    q = workdir / "models" / "cls" / "quantize"
    code, err = run("quantize", ["--task", "cls", "--scheme", "weight_int8", str(artifact), "data/cls", str(q)], capsys)
    assert_one_line(code, err, "quantize.weight_int8.group_size=48", "input dimension 32")
    assert not q.exists()


# ------------------------------------------------------------------------------------------------ distill
def other_tokenizer(path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *reversed(WORDS), ".", ",", "?"]
    (path.parent / "other_vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab=str(path.parent / "other_vocab.txt")).save_pretrained(path)
    return path


def cls_artifact(path, config, tok_dir):
    torch.manual_seed(1)
    with atomic_dir(path) as tmp:
        save_model(tmp, BertForSequenceClassification(config), tok_dir,
                   {"stage": "teacher", "head": "classification", "format": "dense", "task": "cls"})
    return path


def test_teacher_with_another_vocabulary(workdir, artifact, cls_split, tiny_config, capsys):  # noqa: F811
    teacher = cls_artifact(workdir / "models" / "cls" / "teacher", tiny_config, other_tokenizer(workdir / "tok2"))
    out = workdir / "models" / "cls" / "distill"
    code, err = run("distill", ["--task", "cls", str(artifact), str(teacher), "data/cls", str(out)], capsys,
                    distill_student=tripwire)
    assert_one_line(code, err, str(teacher), str(artifact), "tokenizer")
    assert not out.exists()


def test_layer_map_that_does_not_fit_the_depths(workdir, artifact, cls_split, tiny_config, capsys):  # noqa: F811
    deeper = BertConfig(**{**tiny_config.to_dict(), "num_hidden_layers": 3})
    teacher = cls_artifact(workdir / "models" / "cls" / "teacher", deeper, artifact)
    edit_params(workdir, lambda d: d["distill"]["kd"].update(hidden_weight=1.0, layer_map=[1, 4]))
    out = workdir / "models" / "cls" / "distill"
    code, err = run("distill", ["--task", "cls", str(artifact), str(teacher), "data/cls", str(out)], capsys,
                    distill_student=tripwire)
    assert_one_line(code, err, "distill.kd.layer_map", "1..3")


# ------------------------------------------------------------------------------------------------ prepare
def test_prepare_checks_the_tokenizer_before_fetching_data(workdir, tiny_config, capsys):
    tiny_config.save_pretrained(workdir / "not_a_tokenizer")  # config.json only: a default tokenizer
    edit_params(workdir, lambda d: d["prepare"].update(tokenizer=str(workdir / "not_a_tokenizer")))
    code, err = run("prepare", ["data"], capsys, fetch_counted=tripwire)
    assert_one_line(code, err, "not_a_tokenizer", "no tokenizer vocabulary")
    assert not (workdir / "data").exists()

