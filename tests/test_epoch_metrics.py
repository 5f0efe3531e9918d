"""Per-epoch validation logging (``pipeline.train.supervised.epoch_scores``): validation loss and macro P/R/F1 are
logged after every epoch, equal independent computations, and leave the trained weights byte-identical."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForQuestionAnswering, BertForSequenceClassification

from pipeline import tasks
from pipeline.config.args import TrainArgs
from pipeline.data import synthetic
from pipeline.data.features import collate
from pipeline.data.io import write_jsonl
from pipeline.data.vocab import build_tokenizer
from pipeline.metrics.diagnostics import macro_scores, per_class
from pipeline.tasks.classification import ClassificationParams
from pipeline.tasks.qa import QAParams
from pipeline.train.loop import fit
from pipeline.train.run_files import RunFiles
from pipeline.train.supervised import train_task, validation_loss

ARGS = TrainArgs(epochs=2, batch_size=16, lr=2e-3, warmup_ratio=0.1, seed=0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("epochs")
    tok = build_tokenizer(root / "tok")
    for task, make in (("cls", synthetic.generate_classification), ("qa", synthetic.generate_qa)):
        (root / task).mkdir()
        write_jsonl(root / task / "train.jsonl", make(96, 1))
        write_jsonl(root / task / "validation.jsonl", make(40, 2))
    return root, tok


def _model(cls, tok):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=tok.pad_token_id)
    return cls(config)


def test_classification_logs_val_loss_and_macro_scores_without_changing_training(data, tmp_path):
    root, tok = data
    task = tasks.get(ClassificationParams(max_length=48))
    model = _model(BertForSequenceClassification, tok)
    files = RunFiles(tmp_path / "live")
    history, final = train_task(model, task, root / "cls", tok, ARGS, torch.device("cpu"), "cls", files=files)
    files.done()
    assert len(history) == 2
    assert {"val_loss", "macro_precision", "macro_recall", "macro_f1", "accuracy", "f1"} <= set(history[0])
    # The same training with the old per-epoch scoring (task metrics only) gives the same weights, bit for bit.
    plain = _model(BertForSequenceClassification, tok)
    valid = task.rows(root / "cls", "validation")
    feats = task.train_features(task.rows(root / "cls", "train"), tok)
    fit(plain, feats, lambda f: collate(f, tok.pad_token_id), ARGS, torch.device("cpu"), "cls", loss_fn=task.loss,
        on_epoch=lambda e, m: task.score(m, valid, tok, 64, torch.device("cpu"))[0])
    trained, reference = model.state_dict(), plain.state_dict()
    assert all(torch.equal(trained[k], reference[k]) for k in reference)
    # The last epoch's numbers are those of the final model, computed independently.
    logits = task.score(model, valid, tok, 64, torch.device("cpu")).logits
    labels = np.array([r["label"] for r in valid])
    ce = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)).item()
    assert final["val_loss"] == pytest.approx(ce, rel=1e-6)
    diag = per_class(labels, logits.argmax(-1), 2)
    assert final["macro_precision"] == pytest.approx(np.mean(diag["precision"]))
    assert final["macro_recall"] == pytest.approx(np.mean(diag["recall"]))
    assert final["macro_f1"] == pytest.approx(np.mean(diag["f1"]))
    # and they reach the dvclive curves, one row per epoch
    rows = (tmp_path / "live" / "plots" / "metrics" / "eval" / "val_loss.tsv").read_text().splitlines()
    assert rows[0] == "step\tval_loss" and len(rows) == 3
    assert (tmp_path / "live" / "plots" / "metrics" / "eval" / "macro_recall.tsv").is_file()


def test_qa_val_loss_is_the_mean_window_loss(data):
    root, tok = data
    task = tasks.get(QAParams(max_length=48, doc_stride=16, max_answer_length=4))
    model = _model(BertForQuestionAnswering, tok)
    history, final = train_task(model, task, root / "qa", tok, TrainArgs(epochs=1, batch_size=16, seed=0),
                                torch.device("cpu"), "qa")
    assert {"exact_match", "f1", "val_loss"} <= set(final) and "macro_f1" not in final  # no classes in QA
    feats = task.train_features(task.rows(root / "qa", "validation"), tok)
    assert len(feats) > 40  # more windows than questions: a mean per window
    one_by_one = [validation_loss(task, model, [f], tok.pad_token_id, 1, "cpu") for f in feats]
    assert final["val_loss"] == pytest.approx(np.mean(one_by_one), rel=1e-5)


def test_macro_scores_by_hand():
    # class 0: P 2/3, R 1; class 1: P 1, R 1/2; class 2: never predicted, never present -> 0 (zero_division=0)
    scores = macro_scores(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 0]), 3)
    assert scores["accuracy"] == 0.75
    assert scores["macro_precision"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert scores["macro_recall"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert scores["macro_f1"] == pytest.approx((0.8 + 2 / 3 + 0) / 3)
