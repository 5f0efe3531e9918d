"""Predictions saved by the evaluation: SQuAD's official files (answers, no-answer probabilities, n-best) and
per-example classification records, checked against hand-set logits and the metrics they give."""

import json
import math

import numpy as np
import pytest
import torch
from transformers import BertForQuestionAnswering, BertForSequenceClassification

from pipeline.metrics import squad as squad_metrics
from pipeline.tasks.classification import ClassificationParams, ClassificationTask
from pipeline.tasks.qa import QAParams, QATask
from pipeline.tasks.squad import nbest_predictions, postprocess_predictions, postprocess_predictions_v2
from test_qa import ANSWER, LONG_CONTEXT, example, token_at, tok, two_windows  # noqa: F401 (fixtures)


def test_nbest_by_hand(two_windows):
    ex, feats, start, end = two_windows
    offsets = feats["offset_mapping"][1]
    park = token_at(offsets, LONG_CONTEXT.index("park"))
    green = token_at(offsets, LONG_CONTEXT.index("green park"))
    end[1, green] = 4.0  # a second span "the green" with score 5 + 4 = 9
    # The 3 best starts and ends per window: the two spans above; the other top positions are [CLS] and
    # question tokens (baseline logits, lowest index first), which no answer can start or end at.
    (cands,) = nbest_predictions([ex], feats, start, end, n_best_size=3).values()
    assert len(cands) == 2
    best, second = cands
    assert best == {"text": ANSWER, "score": 10.0, "start_logit": 5.0, "end_logit": 5.0,
                    "start_char": LONG_CONTEXT.index(ANSWER), "end_char": LONG_CONTEXT.index("park") + 4,
                    "probability": pytest.approx(1 / (1 + math.exp(-1)))}  # softmax of the scores 10 and 9
    assert (second["text"], second["start_logit"], second["end_logit"]) == ("the green", 5.0, 4.0)
    assert park != green and sum(c["probability"] for c in cands) == pytest.approx(1)
    for c in cands:  # offsets point into the context, the score is the two logits
        assert LONG_CONTEXT[c["start_char"]:c["end_char"]] == c["text"]
        assert c["score"] == c["start_logit"] + c["end_logit"]
    # the first candidate is the answer post-processing picks
    assert postprocess_predictions([ex], feats, start, end) == {"q1": best["text"]}


def test_nbest_v2_adds_the_null_candidate(two_windows):
    ex, feats, start, end = two_windows
    start[:, 0], end[:, 0] = [10.0, 8.0], [10.0, 7.0]  # null scores 20 and 15: the minimum, 15, is the one
    (cands,) = nbest_predictions([ex], feats, start, end, n_best_size=2, with_null=True).values()
    assert len(cands) == 2 and cands[0] == {"text": "", "score": 15.0, "start_logit": 8.0, "end_logit": 7.0,
                                            "start_char": None, "end_char": None,
                                            "probability": pytest.approx(cands[0]["probability"])}
    assert cands[1]["text"] == ANSWER
    assert cands[0]["probability"] / cands[1]["probability"] == pytest.approx(math.exp(15 - 10))
    assert postprocess_predictions_v2([ex], feats, start, end).predictions == {"q1": ""}  # 15 - 10 > 0


QA_ROWS = [
    {"id": "a", "title": "t", "context": "the movie was good and the plot was great", "question": "the plot ?",
     "answers": {"text": ["great"], "answer_start": [36]}},
    {"id": "b", "title": "t", "context": "not very bad", "question": "movie ?",
     "answers": {"text": ["very bad"], "answer_start": [4]}},
    {"id": "c", "title": "t", "context": "the movie was awful", "question": "was ?",
     "answers": {"text": [], "answer_start": []}},
]


@pytest.mark.parametrize("v2", [False, True])
def test_qa_score_writes_the_official_files(tiny_config, tokenizer, v2):
    torch.manual_seed(0)
    model = BertForQuestionAnswering(tiny_config).eval()
    rows = QA_ROWS if v2 else QA_ROWS[:2]
    task = QATask(QAParams(type="qa", max_length=32, doc_stride=8, n_best_size=4, version_2_with_negative=v2))
    scored = task.score(model, rows, tokenizer, 2, "cpu", predictions=True)
    files = scored.predictions
    assert set(files) == {"predictions.json", "nbest_predictions.json"} | ({"na_prob.json"} if v2 else set())
    json.dumps(files, allow_nan=False)  # strict JSON
    preds, nbest = files["predictions.json"], files["nbest_predictions.json"]
    assert set(preds) == set(nbest) == {r["id"] for r in rows}
    refs = {r["id"]: r["answers"]["text"] for r in rows}
    if v2:
        probs = files["na_prob.json"]
        assert all(0 <= p <= 1 for p in probs.values())
        # what the official v2 script computes from these files is the score the pipeline reports
        official = squad_metrics.squad_v2(preds, refs, {q: 0.0 for q in refs}, threshold=0.0)  # "" where predicted
        assert (official["exact"], official["f1"]) == (pytest.approx(scored.scores["exact"]),
                                                     pytest.approx(scored.scores["f1"]))
        for qid, p in probs.items():  # P(no answer) = sigmoid(null - best span): "" exactly where it is > 1/2
            assert (p > 0.5) == (preds[qid] == "")
    else:
        assert squad_metrics.squad_v1(preds, refs) == pytest.approx(scored.scores)
        for qid, cands in nbest.items():
            assert cands[0]["text"] == preds[qid] and len(cands) <= 4
    assert task.score(model, rows, tokenizer, 2, "cpu").predictions is None  # only when asked for


def test_classification_records(tiny_config, tokenizer):
    rows = [{"sentence": s, "label": i % 3, "idx": 10 + i} for i, s in
            enumerate(["the movie was good", "the plot was awful", "not very great", "bad and dull"])]
    tiny_config.num_labels = 3
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config).eval()
    task = ClassificationTask(ClassificationParams(type="classification", num_labels=3, max_length=16))
    scored = task.score(model, rows, tokenizer, 2, "cpu", predictions=True)
    records = scored.predictions["predictions.json"]
    assert [(r["row"], r["idx"], r["label"]) for r in records] == [(n, 10 + n, n % 3) for n in range(4)]
    for r, logits in zip(records, scored.logits):
        assert r["prediction"] == int(np.argmax(logits)) and len(r["probabilities"]) == 3
        assert r["probabilities"] == pytest.approx((np.exp(logits) / np.exp(logits).sum()).tolist())
    assert np.mean([r["prediction"] == r["label"] for r in records]) == pytest.approx(scored.scores["accuracy"])
    regression = ClassificationTask(ClassificationParams(type="classification", num_labels=1, max_length=16))
    tiny_config.num_labels = 1
    reg = regression.score(BertForSequenceClassification(tiny_config).eval(),
                           [{**r, "label": float(r["label"])} for r in rows], tokenizer, 2, "cpu", predictions=True)
    outputs = reg.predictions["predictions.json"]
    assert [o["prediction"] for o in outputs] == pytest.approx(reg.logits[:, 0].tolist())
    assert all("probabilities" not in o for o in outputs)
