"""SQuAD v2 end to end on CPU: a tiny BERT trained on synthetic data with unanswerable questions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForQuestionAnswering

from pipeline import tasks
from pipeline.config.args import TrainArgs
from pipeline.core.errors import PipelineError
from pipeline.data import synthetic
from pipeline.data.io import write_jsonl
from pipeline.data.vocab import build_tokenizer
from pipeline.tasks import squad as qa
from pipeline.tasks.base import all_logits
from pipeline.tasks.qa import QAParams, encode_features
from pipeline.train.supervised import train_task

# Short windows so that most contexts (up to 60 words) span two features: the null score is then a
# minimum over several features, as on real SQuAD v2.
TASK = QAParams(max_length=48, doc_stride=16, max_answer_length=4, version_2_with_negative=True,
                  text_metrics=["bleu", "rouge"])


def score(model, params, rows, tok):
    return tasks.get(params).score(model, rows, tok, 64, "cpu")[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``(model, tokenizer, validation rows, training history, (metrics before, after))``, the last two
    scored answering every question (threshold +inf)."""
    root = tmp_path_factory.mktemp("qa_v2")
    tok = build_tokenizer(root / "tok")
    write_jsonl(root / "train.jsonl", synthetic.generate_qa(400, 1, unanswerable_fraction=0.5))
    valid = synthetic.generate_qa(120, 2, unanswerable_fraction=0.5)
    write_jsonl(root / "validation.jsonl", valid)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=64, pad_token_id=tok.pad_token_id)
    model = BertForQuestionAnswering(config)
    answer_all = dataclasses.replace(TASK, null_score_diff_threshold=np.inf)
    before = score(model, answer_all, valid, tok)
    args = TrainArgs(epochs=6, batch_size=32, lr=3e-3, warmup_ratio=0.1, seed=0)
    history, _ = train_task(model, tasks.get(TASK), root, tok, args, torch.device("cpu"), "qa-v2")
    after = score(model, answer_all, valid, tok)
    return model, tok, valid, history, (before, after)


def test_training_learns_to_find_answers(trained):
    *_, history, (before, after) = trained
    assert len(history) == 6
    assert history[-1]["loss"] < 0.6 * history[0]["loss"]
    # Answering every question, the spans on answerable ones got much better (measured: 8 -> 34 F1).
    # Telling unanswerable questions apart needs the entity matched, more than this budget teaches.
    assert after["HasAns_f1"] > before["HasAns_f1"] + 15


def test_v2_metrics_are_consistent(trained):
    *_, history, _ = trained
    m = history[-1]
    assert m["total"] == 120 and m["HasAns_total"] + m["NoAns_total"] == m["total"]
    assert 0 < m["HasAns_total"] < 120
    for key in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1", "best_exact", "best_f1",
                "bleu", "rouge1", "rouge2", "rougeL"):
        assert 0.0 <= m[key] <= 100.0, key
    # The totals are a weighted mean of the two groups.
    weighted = (m["HasAns_f1"] * m["HasAns_total"] + m["NoAns_f1"] * m["NoAns_total"]) / m["total"]
    assert m["f1"] == pytest.approx(weighted)
    assert m["exact"] <= m["f1"] and m["NoAns_exact"] == m["NoAns_f1"]  # no partial credit for ""
    # Threshold 0 is one of the candidates (or scores like one), so the best is at least as good; so is
    # the all-unanswered baseline.
    assert m["best_f1"] >= m["f1"] - 1e-9 and m["best_exact"] >= m["exact"] - 1e-9
    assert m["best_f1"] >= 100 * m["NoAns_total"] / m["total"] - 1e-9


def test_scoring_at_the_best_threshold_reproduces_best_f1(trained):
    model, tok, valid, history, _ = trained
    m = history[-1]
    at_best = dataclasses.replace(TASK, null_score_diff_threshold=m["best_f1_thresh"])
    again = score(model, at_best, valid, tok)
    assert again["f1"] == pytest.approx(m["best_f1"])
    assert again["best_f1"] == pytest.approx(m["best_f1"])  # the search does not depend on the threshold


def test_infinite_thresholds_on_a_trained_model(trained):
    model, tok, valid, _, _ = trained
    features = qa.prepare_eval_features(valid, tok, TASK.max_length, TASK.doc_stride)
    assert len(features["example_id"]) > len(valid)  # some contexts are windowed
    start, end = all_logits(model, encode_features(features, False), tok.pad_token_id, 64, "cpu")
    kwargs = {"n_best_size": TASK.n_best_size, "max_answer_length": TASK.max_answer_length}
    always = qa.postprocess_predictions_v2(valid, features, start, end, null_score_diff_threshold=np.inf, **kwargs)
    never = qa.postprocess_predictions_v2(valid, features, start, end, null_score_diff_threshold=-np.inf, **kwargs)
    assert all(text != "" for text in always.predictions.values())
    assert all(text == "" for text in never.predictions.values())
    assert always.answers == never.answers == always.predictions
    assert always.predictions == qa.postprocess_predictions(valid, features, start, end, **kwargs)


def test_v1_scoring_of_v2_data_is_a_clear_error(trained):
    model, tok, valid, _, _ = trained
    with pytest.raises(PipelineError, match="version_2_with_negative"):
        score(model, dataclasses.replace(TASK, version_2_with_negative=False), valid, tok)
