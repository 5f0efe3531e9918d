"""Pretrained checkpoints of every family as ``model.base``: the right classes, every encoder weight loaded,
and clear errors instead of a silently random model. Also tokenizer conventions (byte-level BPE spans,
segment ids), cross-family distillation and BERT's MLM + NSP pretraining."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from family_kit import TINY, make_data, make_tokenizer
from tools.code_deps import ROOT
from pipeline.artifacts import load_model
from pipeline.config.args import TrainArgs
from pipeline.config.loader import load
from pipeline.core.errors import PipelineError
from pipeline.data.tokenizer import load_tokenizer
from pipeline.models import families
from pipeline.models.build import ArchParams, init_model
from test_stage_errors import stage


@pytest.fixture(scope="module")
def toks(tmp_path_factory):
    root = tmp_path_factory.mktemp("toks")
    return {s: load_tokenizer(make_tokenizer(root / s, s)) for s in ("wordpiece", "bpe", "bpe_template")}


def checkpoint(tmp_path, model_type: str, vocab_size: int, pad_id: int, head: str = "mlm"):
    """A tiny randomly initialised checkpoint of ``model_type`` built with transformers alone (as a user's
    checkpoint would be), saved with ``save_pretrained``."""
    import transformers

    names = {"bert": "Bert", "roberta": "Roberta", "distilbert": "DistilBert", "modernbert": "ModernBert",
             "electra": "Electra"}[model_type]
    sizes = dict(TINY, max_position_embeddings=TINY["max_position_embeddings"] + 2)  # RoBERTa's offset
    if model_type == "distilbert":
        sizes = {"dim": TINY["hidden_size"], "n_layers": TINY["num_hidden_layers"], "n_heads": TINY["num_attention_heads"],
                 "hidden_dim": TINY["intermediate_size"], "max_position_embeddings": TINY["max_position_embeddings"]}
    elif model_type == "electra":
        sizes["embedding_size"] = 16
    config = getattr(transformers, f"{names}Config")(vocab_size=vocab_size, pad_token_id=pad_id, **sizes)
    suffix = {"mlm": "ForMaskedLM", "classification": "ForSequenceClassification"}[head]
    torch.manual_seed(7)
    model = getattr(transformers, f"{names}{suffix}")(config)
    path = tmp_path / f"ckpt-{model_type}"
    model.save_pretrained(path)
    return path, model


def test_every_family_module_registers_the_family_named_after_it():
    """The registry rule: model type ``N`` is registered by ``families/<N with - as _>.py``, one per module."""
    package = Path(families.__file__).parent
    modules = {p.stem for p in package.glob("*.py")} - {"__init__", "base"}
    names = families.FAMILIES.names()
    assert {families.FAMILIES.module(n).rsplit(".", 1)[1] for n in names} == modules
    assert {"bert", "deberta-v2", "xlm-roberta"} <= set(names)
    assert families.family("xlm-roberta").model_type == "xlm-roberta"


@pytest.mark.parametrize("model_type", ["roberta", "distilbert", "modernbert"])
def test_base_stage_loads_a_non_bert_checkpoint_with_its_own_classes(model_type, tmp_path, monkeypatch, toks):
    """The bug of issue 13: such a checkpoint became a randomly initialised BertForMaskedLM, exit 0."""
    tokenizer = toks["wordpiece"]
    tok_dir = tmp_path / "tok"
    tokenizer.save_pretrained(tok_dir)
    ckpt, original = checkpoint(tmp_path, model_type, len(tokenizer), tokenizer.pad_token_id)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"]["base"] = str(ckpt)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    assert stage("base").main([str(tok_dir), "models/base"]) == 0
    config = json.loads((tmp_path / "models" / "base" / "config.json").read_text())
    assert config["model_type"] == model_type
    model, _ = load_model(tmp_path / "models" / "base", "mlm")
    assert type(model) is type(original)
    stored = load_file(str(ckpt / "model.safetensors"))
    state = model.state_dict()
    encoder = [k for k in stored if families.of(model).component(k)[0] in ("attention", "ffn", "embeddings")]
    assert len(encoder) > 10
    for key in encoder:
        assert torch.equal(state[key], stored[key]), key


def test_checkpoint_whose_weights_do_not_fit_is_an_error_naming_them(tmp_path, toks):
    """config.json says BERT, the weights are RoBERTa's: transformers would initialise BERT at random."""
    tokenizer = toks["wordpiece"]
    ckpt, _ = checkpoint(tmp_path, "roberta", len(tokenizer), tokenizer.pad_token_id)
    config = json.loads((ckpt / "config.json").read_text())
    config.update(model_type="bert", architectures=["BertForMaskedLM"])
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(PipelineError, match=r"does not fit its bert architecture: \d+ encoder weights missing \['bert\."):
        init_model(ArchParams(base=str(ckpt)), "mlm", len(tokenizer), tokenizer.pad_token_id)
    with pytest.raises(PipelineError, match=r"^teacher\.cls\.arch\.base '.*ckpt-roberta': the checkpoint does not fit"):
        init_model(ArchParams(base=str(ckpt)), "classification", len(tokenizer), 0, key="teacher.cls.arch")


def test_missing_layer_weights_are_an_error(tmp_path, toks):
    tokenizer = toks["wordpiece"]
    ckpt, _ = checkpoint(tmp_path, "electra", len(tokenizer), tokenizer.pad_token_id)
    tensors = load_file(str(ckpt / "model.safetensors"))
    save_file({k: v for k, v in tensors.items() if ".layer.2." not in k}, str(ckpt / "model.safetensors"))
    with pytest.raises(PipelineError, match=r"encoder weights missing \['electra\.encoder\.layer\.2\."):
        init_model(ArchParams(base=str(ckpt)), "classification", len(tokenizer), tokenizer.pad_token_id)


def test_unsupported_model_type_is_one_line_listing_the_supported(tmp_path, toks):
    from transformers import GPT2Config

    GPT2Config(n_layer=1, n_embd=16, n_head=2).save_pretrained(tmp_path / "gpt2")
    with pytest.raises(PipelineError) as err:
        init_model(ArchParams(base=str(tmp_path / "gpt2")), "mlm", 100, 0)
    message = str(err.value)
    known = ", ".join(families.FAMILIES.names())
    assert "\n" not in message and message.endswith(f"unknown model family 'gpt2' (known: {known})")
    with pytest.raises(PipelineError, match=r"^unknown model family 'gpt2' \(known: albert, bert, "):
        ArchParams(type="gpt2")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"model": {"type": "gpt2"}}))
    with pytest.raises(PipelineError, match=r"^params.yaml: 'model.type': unknown model family 'gpt2' \(known: "):
        load({"model": ArchParams}, file=tmp_path / "params.yaml")


def test_heads_missing_from_a_checkpoint_are_fresh_but_allowed(tmp_path, toks):
    """A bare encoder checkpoint (like the MiniLM package): the MLM head and a classification head are new."""
    from transformers import ElectraConfig, ElectraForPreTraining

    tokenizer = toks["wordpiece"]
    config = ElectraConfig(vocab_size=len(tokenizer), embedding_size=16, pad_token_id=0, **TINY)
    torch.manual_seed(0)
    ElectraForPreTraining(config).save_pretrained(tmp_path / "disc")  # a discriminator: its own head is unused
    for head in ("mlm", "classification", "qa"):
        model = init_model(ArchParams(base=str(tmp_path / "disc")), head, len(tokenizer), 0)
        assert model.config.model_type == "electra"


def test_pruned_artifact_as_base_never_runs_its_modeling_file(tmp_path, toks, monkeypatch):
    """The project's loader ignores auto_map: a modeling file that would fail on import is never executed."""
    from pipeline.models.store import write_artifact
    from pipeline.models.structure import prune_heads_

    tokenizer = toks["wordpiece"]
    tok_dir = tmp_path / "tok"
    tokenizer.save_pretrained(tok_dir)
    _, model = checkpoint(tmp_path, "bert", len(tokenizer), 0, head="classification")
    prune_heads_(model, {0: [0, 1]})
    write_artifact(tmp_path / "pruned", model, tok_dir, {"stage": "prune", "head": "classification", "format": "dense"})
    (tmp_path / "pruned" / "modeling_pruned.py").write_text("raise SystemExit('remote code ran')\n")
    loaded, _ = load_model(tmp_path / "pruned")
    assert loaded.config.heads_per_layer[0] == 2


# ------------------------------------------------------------------------------------- tokenizers
@pytest.mark.parametrize("style", ["wordpiece", "bpe", "bpe_template"])
def test_qa_spans_round_trip_for_every_tokenizer_convention(style, toks):
    """Gold spans -> token labels -> oracle logits -> post-processed text equals the gold answer, also for
    byte-level BPE whose offsets include the space before a word (bpe_template)."""
    from pipeline.data import synthetic
    from pipeline.tasks import squad

    tokenizer = toks[style]
    rows = synthetic.generate_qa(20, 3)
    feats = squad.prepare_train_features(rows, tokenizer, max_length=64, doc_stride=16)
    assert ("token_type_ids" in feats) == (style == "wordpiece")
    evals = squad.prepare_eval_features(rows, tokenizer, max_length=64, doc_stride=16)
    width = max(len(ids) for ids in evals["input_ids"])
    start, end = np.full((len(evals["input_ids"]), width), -10.0), np.full((len(evals["input_ids"]), width), -10.0)
    for i in range(len(evals["input_ids"])):
        if feats["start_positions"][i] != evals["cls_index"][i]:
            start[i, feats["start_positions"][i]], end[i, feats["end_positions"][i]] = 10.0, 10.0
    preds = squad.postprocess_predictions(rows, evals, start, end, max_answer_length=10)
    assert preds == {r["id"]: r["answers"]["text"][0] for r in rows}


@pytest.mark.parametrize("model_type", ["roberta", "distilbert", "modernbert", "deberta-v2"])
def test_segment_ids_are_not_fed_to_models_without_segment_embeddings(model_type, toks):
    """A BERT tokenizer makes segment id 1 for a pair's second text: feeding it to RoBERTa (one segment
    embedding) would index past the table, DistilBERT and ModernBERT take no segment ids at all."""
    from pipeline.tasks.base import Task

    tokenizer = toks["wordpiece"]
    model = init_model(ArchParams(type=model_type, **TINY), "classification", len(tokenizer), 0)
    enc = tokenizer(["the movie was good"], ["the plot was awful"], return_tensors="pt")
    assert int(enc["token_type_ids"].max()) == 1
    (logits,) = Task.logits(model.eval(), dict(enc))
    assert logits.shape == (1, 2)


# ------------------------------------------------------------------------------------- distillation
def test_cross_family_distillation_and_tokenizer_mismatch(tmp_path, toks):
    """A DistilBERT student learns from a BERT teacher (same WordPiece vocabulary); a teacher with a byte-level
    BPE tokenizer is refused with both artifacts named."""
    from pipeline import tasks
    from pipeline.distill.kd import KDParams, distill_student, load_teacher
    from pipeline.models.store import write_artifact
    from pipeline.tasks.classification import ClassificationParams

    data = make_data(tmp_path / "data", {"cls": (32, 8)})
    task = tasks.get(ClassificationParams(max_length=32))
    wordpiece, bpe = toks["wordpiece"], toks["bpe"]
    for name, tok in (("wp", wordpiece), ("bpe", bpe)):
        tok.save_pretrained(tmp_path / f"tok-{name}")
    teacher = init_model(ArchParams(type="bert", **TINY), "classification", len(wordpiece), 0)
    write_artifact(tmp_path / "teacher", teacher, tmp_path / "tok-wp", {"stage": "teacher", "head": "classification",
                                                                        "format": "dense"})
    student = init_model(ArchParams(type="distilbert", **TINY), "classification", len(wordpiece), 0)
    loaded = load_teacher(tmp_path / "teacher", "classification", wordpiece, tmp_path / "student")
    history, _ = distill_student(student, loaded, task, KDParams(hidden_weight=1.0, attention_weight=1.0), data / "cls",
                                 wordpiece, TrainArgs(epochs=1, batch_size=16, seed=0), torch.device("cpu"), "kd")
    assert np.isfinite(history[-1]["loss"])
    bpe_teacher = init_model(ArchParams(type="roberta", **TINY), "classification", len(bpe), bpe.pad_token_id)
    write_artifact(tmp_path / "bpe-teacher", bpe_teacher, tmp_path / "tok-bpe",
                   {"stage": "teacher", "head": "classification", "format": "dense"})
    with pytest.raises(PipelineError, match=r"bpe-teacher has another tokenizer .* than the student .*student"):
        load_teacher(tmp_path / "bpe-teacher", "classification", wordpiece, tmp_path / "student")


# ------------------------------------------------------------------------------------- pretraining
def test_mlm_nsp_pretraining_reports_perplexity_and_nsp_accuracy(tmp_path, toks):
    from pipeline.data.io import read_split
    from pipeline.pretrain.mlm import MlmParams, pretrain
    from pipeline.pretrain.nsp import OBJECTIVES, sentence_pairs

    assert OBJECTIVES["mlm"] is pretrain  # the default objective is the plain MLM code path
    data = make_data(tmp_path / "data", {"corpus": (64, 16)})
    rows, valid = read_split(data / "corpus", "train", "text"), read_split(data / "corpus", "validation", "text")
    pairs = sentence_pairs(rows, 0)
    assert 0.35 < np.mean([label for _, _, label in pairs]) < 0.65
    tokenizer = toks["wordpiece"]
    model = init_model(ArchParams(type="bert", **TINY), "mlm", len(tokenizer), 0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    history = OBJECTIVES["mlm_nsp"](model, rows, valid, tokenizer, MlmParams(max_length=32),
                                    TrainArgs(epochs=2, batch_size=32, seed=0), torch.device("cpu"), "nsp")
    assert [sorted(h) for h in history] == [["epoch", "loss", "nsp_accuracy", "perplexity"]] * 2
    assert all(0 <= h["nsp_accuracy"] <= 1 and h["perplexity"] > 1 for h in history)
    assert type(model).__name__ == "BertForMaskedLM"  # the artifact stays an MLM model
    changed = [k for k in before if not torch.equal(before[k], model.state_dict()[k])]
    assert any(".encoder.layer.0." in k for k in changed) and any(k.startswith("cls.predictions") for k in changed)
    roberta = init_model(ArchParams(type="roberta", **TINY), "mlm", len(tokenizer), 0)
    with pytest.raises(PipelineError, match="mlm_nsp needs a BERT model .* roberta"):
        OBJECTIVES["mlm_nsp"](roberta, rows, valid, tokenizer, MlmParams(max_length=32), TrainArgs(), torch.device("cpu"), "x")


def test_pretrain_stage_with_mlm_nsp(tmp_path, monkeypatch, capsys):
    """The stage reads pretrain.objective: MLM + NSP for BERT (per-epoch NSP accuracy in the metrics, an MLM
    artifact); one error line for a family without a next-sentence head."""
    make_data(tmp_path / "data", {"corpus": (64, 16)})
    make_tokenizer(tmp_path / "data" / "tokenizer", "wordpiece")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"].update(TINY)
    params["pretrain"].update(objective="mlm_nsp")
    params["pretrain"]["train"].update(epochs=1)
    monkeypatch.chdir(tmp_path)
    for model_type in ("bert", "roberta"):
        params["model"]["type"] = model_type
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
        base, out = f"models/base-{model_type}", f"models/pretrain-{model_type}"
        assert stage("base").main(["data/tokenizer", base]) == 0
        code = stage("pretrain").main(["--run", "a", base, "data/corpus", out, f"m-{model_type}.json"])
        if model_type == "roberta":
            err = capsys.readouterr().err.strip().splitlines()
            assert code == 2 and "mlm_nsp needs a BERT model" in err[-1] and not (tmp_path / out).exists()
            continue
        assert code == 0
        metrics = json.loads((tmp_path / "m-bert.json").read_text())
        assert 0 <= metrics["epochs"]["1"]["nsp_accuracy"] <= 1 and metrics["perplexity"] > 1
        model, meta = load_model(tmp_path / out, "mlm")
        assert meta["method"] == "mlm_nsp" and type(model).__name__ == "BertForMaskedLM"
