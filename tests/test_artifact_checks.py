"""An artifact is checked as a whole when it is opened: every required file present and well-formed, the
tokenizer real and no larger than the embedding matrix. Each defect is one PipelineError line naming the file
and what is wrong, never a traceback and never a silent default (a tokenizer that maps every word to [UNK])."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import BertForSequenceClassification

from pipeline.artifacts import load_model, read_meta
from pipeline.core.errors import PipelineError
from pipeline.core.files import atomic_dir
from pipeline.data.tokenizer import load_tokenizer
from pipeline.models.store import save_model
from test_stage_errors import artifact, cls_data, run_stage, workdir  # noqa: F401 (fixtures)


def make_artifact(path, config, tokenizer, head_class=BertForSequenceClassification, meta=None):
    tok = path.parent / "tok"
    tokenizer.save_pretrained(tok)
    torch.manual_seed(0)
    with atomic_dir(path) as tmp:
        save_model(tmp, head_class(config), tok, meta or {"stage": "finetune", "head": "classification",
                                                           "format": "dense", "task": "cls"})
    return path


def edit_json(path, fn):
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def remove(*names):
    return lambda root: [(root / n).unlink() for n in names if (root / n).exists()]


def write(name, text):
    return lambda root: (root / name).write_text(text)


def edit(name, fn):
    return lambda root: edit_json(root / name, fn)


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")

CASES = {
    # what is broken: (how, file named, words in the message)
    "no tokenizer files": (remove(*TOKENIZER_FILES), "", "no tokenizer vocabulary"),
    "tokenizer config only": (remove("tokenizer.json", "vocab.txt"), "", "no tokenizer vocabulary"),
    "corrupt tokenizer.json": (write("tokenizer.json", '{"model": '), "tokenizer.json", "not valid JSON"),
    "corrupt tokenizer_config.json": (write("tokenizer_config.json", "[1, 2"), "tokenizer_config.json",
                                      "not valid JSON"),
    "config not JSON": (write("config.json", "{model_type: bert"), "config.json", "not valid JSON"),
    "config a list": (write("config.json", "[1, 2]"), "config.json", "must be a JSON object"),
    "config without model_type": (edit("config.json", lambda c: c.pop("model_type")), "config.json", "model_type"),
    "config of an unsupported family": (edit("config.json", lambda c: c.update(model_type="gpt2")), "config.json",
                                        "unknown model family 'gpt2'"),
    "config with a bad size": (edit("config.json", lambda c: c.update(hidden_size="wide")), "config.json",
                               "hidden_size"),
    "config vocab_size not a number": (edit("config.json", lambda c: c.update(vocab_size="many")), "config.json",
                                       "vocab_size"),
    "tokenizer larger than the embeddings": (edit("config.json", lambda c: c.update(vocab_size=10)),
                                             "config.json", "vocab_size 10"),
    "meta without head": (edit("pipeline.json", lambda m: m.pop("head")), "pipeline.json", "'head'"),
    "meta with an unknown head": (edit("pipeline.json", lambda m: m.update(head="seq2seq")), "pipeline.json",
                                  "'head'"),
    "meta without format": (edit("pipeline.json", lambda m: m.pop("format")), "pipeline.json", "'format'"),
    "meta stage not a string": (edit("pipeline.json", lambda m: m.update(stage=3)), "pipeline.json", "'stage'"),
    "meta a list": (write("pipeline.json", "[]"), "pipeline.json", "must be a JSON object"),
    "quantized without its description": (edit("pipeline.json", lambda m: m.update(format="weight_int8")),
                                          "pipeline.json", "'quantization'"),
    "no weights": (remove("model.safetensors"), "model.safetensors", "missing"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_broken_artifact_is_one_line_naming_the_file(tmp_path, tiny_config, tokenizer, case):
    how, file, words = CASES[case]
    root = make_artifact(tmp_path / "models" / "cls" / "finetune", tiny_config, tokenizer)
    how(root)
    for opener in (read_meta, load_model):
        with pytest.raises(PipelineError) as err:
            opener(root)
        message = str(err.value)
        assert "\n" not in message and str(root / file) in message and words in message, message


def test_a_tokenizer_smaller_than_the_embeddings_is_fine(tmp_path, tiny_config, tokenizer):
    """Padded vocabularies (embedding rows beyond the tokenizer) are normal; only a larger tokenizer is wrong."""
    assert len(tokenizer) < tiny_config.vocab_size
    root = make_artifact(tmp_path / "a", tiny_config, tokenizer)
    model, meta = load_model(root, "classification")
    assert meta["head"] == "classification" and model.config.vocab_size == tiny_config.vocab_size


def test_a_directory_transformers_would_turn_into_a_default_tokenizer_is_refused(tmp_path, tiny_config):
    """With only config.json (or only tokenizer_config.json) transformers builds a 5-token tokenizer that maps
    every word to [UNK]; load_tokenizer refuses it instead."""
    tiny_config.save_pretrained(tmp_path)
    with pytest.raises(PipelineError, match="no tokenizer vocabulary"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer"}))
    with pytest.raises(PipelineError, match="no tokenizer vocabulary"):
        load_tokenizer(tmp_path)


def test_an_empty_vocabulary_is_refused(tmp_path):
    """A vocab.txt holding only the special tokens loads, but every word would be [UNK]."""
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer"}))
    with pytest.raises(PipelineError, match="only its 5 special tokens"):
        load_tokenizer(tmp_path)


def test_evaluate_refuses_an_artifact_without_tokenizer_files(workdir, artifact, cls_data, capsys):  # noqa: F811
    """The issue's case: with every tokenizer file gone, evaluate used to exit 0 with metrics of a model that
    saw only [UNK]; now it stops with one line and writes nothing."""
    remove(*TOKENIZER_FILES)(artifact)
    out = workdir / "metrics" / "eval.json"
    code, err = run_stage("evaluate", ["--task", "cls", "--baseline", str(artifact), "--details", "d.json", "--facts", "f.json", "--speed", "s.json", "--predictions", "p",
                                       str(artifact), "data/cls", str(out)], capsys)
    assert code == 2 and len(err) == 1 and str(artifact) in err[0] and "tokenizer" in err[0], err
    assert not out.exists() and not (workdir / "d.json").exists() and not (workdir / "plots").exists()
