"""SQuAD v2.0 metrics on hand-made cases whose scores are worked out in the comments."""

import numpy as np
import pytest

from pipeline.metrics.squad import squad_v1, squad_v2

# Three answerable questions (a, b, e) and two unanswerable ones (c, d). The predictions are what each
# question gets if answered; a diff above the threshold replaces it by "".
REFS = {"a": ["cat"], "b": ["dog"], "c": [], "d": [], "e": ["red fox"]}
PREDS = {"a": "the cat", "b": "big dog", "c": "dog", "d": "mouse", "e": "fox"}
#        exact/f1 if answered: a 1/1, b 0/(2/3), c 0/0, d 0/0, e 0/(2/3)   ("" scores 1 for c, d; 0 else)
DIFFS = {"a": -2.0, "b": 0.5, "c": 3.0, "d": -1.0, "e": 0.7}


def test_scores_at_threshold_zero():
    m = squad_v2(PREDS, REFS, DIFFS, threshold=0.0)
    # Answered (diff <= 0): a (1), d (0). Unanswered: b (0), c (1), e (0). Exact and F1 agree here.
    assert m["total"] == 5 and m["HasAns_total"] == 3 and m["NoAns_total"] == 2
    assert m["exact"] == pytest.approx(40.0) and m["f1"] == pytest.approx(40.0)
    assert m["HasAns_exact"] == pytest.approx(100 / 3) and m["HasAns_f1"] == pytest.approx(100 / 3)
    assert m["NoAns_exact"] == pytest.approx(50.0) and m["NoAns_f1"] == pytest.approx(50.0)


def test_best_threshold_search():
    m = squad_v2(PREDS, REFS, DIFFS, threshold=0.0)
    # Start with all unanswered: c + d = 2. Raising the threshold past each diff answers that question:
    #   exact: -2 (a +1) -> 3 | -1 (d -1) -> 2 | 0.5 (b 0) -> 2 | 0.7 (e 0) -> 2 | 3 (c -1) -> 1
    #   f1:    -2 (a +1) -> 3 | -1 (d -1) -> 2 | 0.5 (b +2/3) -> 2.67 | 0.7 (e +2/3) -> 3.33 | 3 -> 2.33
    assert m["best_exact"] == pytest.approx(60.0) and m["best_exact_thresh"] == -2.0
    assert m["best_f1"] == pytest.approx(100 * (10 / 3) / 5) and m["best_f1_thresh"] == 0.7
    # Scoring at the best threshold reproduces the best score.
    assert squad_v2(PREDS, REFS, DIFFS, threshold=0.7)["f1"] == pytest.approx(m["best_f1"])
    assert squad_v2(PREDS, REFS, DIFFS, threshold=-2.0)["exact"] == pytest.approx(m["best_exact"])


def test_all_unanswered_can_be_best():
    refs, preds = {"x": ["cat"], "y": [], "z": []}, {"x": "dog", "y": "cat", "z": "cat"}
    m = squad_v2(preds, refs, {"x": 1.0, "y": 2.0, "z": 3.0})
    # Answering anything only loses: the best is the start, whose threshold lies just below every diff.
    assert m["best_exact"] == pytest.approx(200 / 3) and m["best_f1"] == pytest.approx(200 / 3)
    assert m["best_exact_thresh"] < 1.0 and m["best_exact_thresh"] == pytest.approx(1.0)
    at_best = squad_v2(preds, refs, {"x": 1.0, "y": 2.0, "z": 3.0}, threshold=m["best_exact_thresh"])
    assert at_best["exact"] == pytest.approx(200 / 3)


def test_equal_diffs_flip_together():
    # x gains 1 when answered, y loses 1, and no threshold separates them: the best stays "none answered"
    # (50%), not the 100% a question-by-question scan over a sorted list would report.
    m = squad_v2({"x": "cat", "y": "dog"}, {"x": ["cat"], "y": []}, {"x": 1.0, "y": 1.0})
    assert m["best_exact"] == pytest.approx(50.0) and m["best_exact_thresh"] < 1.0


def test_infinite_diff_is_not_a_candidate_threshold():
    m = squad_v2({"x": "cat", "y": ""}, {"x": ["cat"], "y": ["dog"]}, {"x": 0.0, "y": np.inf}, threshold=np.inf)
    assert m["exact"] == pytest.approx(50.0)  # y has no span: answered or not, it scores 0
    assert m["best_exact"] == pytest.approx(50.0) and m["best_exact_thresh"] == 0.0


def test_without_diffs_and_all_answerable_matches_v1():
    refs = {"q1": ["Cat"], "q2": ["small dog", "dog"], "q3": ["a red fox"]}
    preds = {"q1": "the cat", "q2": "big dog", "q3": "fox"}
    v1, v2 = squad_v1(preds, refs), squad_v2(preds, refs)
    assert v2["exact"] == pytest.approx(v1["exact_match"]) and v2["f1"] == pytest.approx(v1["f1"])
    assert v2["HasAns_f1"] == pytest.approx(v1["f1"]) and v2["HasAns_total"] == 3
    assert "NoAns_total" not in v2 and "NoAns_f1" not in v2  # as the official script: no empty groups
    assert v2["best_f1"] == pytest.approx(v1["f1"]) and v2["best_f1_thresh"] == 0.0


def test_unanswerable_only_and_gold_normalisation():
    # Golds that normalise to nothing are dropped; "" (or an article) is then the exact answer.
    m = squad_v2({"u": "", "v": "the", "w": "cat"}, {"u": [], "v": [], "w": ["cat", "the"]})
    assert m["exact"] == pytest.approx(100.0) and m["NoAns_total"] == 2 and m["HasAns_total"] == 1


def test_missing_ids_are_named():
    with pytest.raises(ValueError, match="no prediction .*'b'"):
        squad_v2({"a": "x"}, {"a": ["x"], "b": []})
    with pytest.raises(ValueError, match="no score diff .*'b'"):
        squad_v2({"a": "x", "b": ""}, {"a": ["x"], "b": []}, {"a": 0.0})
    with pytest.raises(ValueError, match="empty"):
        squad_v2({}, {})


# --- params ----------------------------------------------------------------------------------------


def test_task_params_for_v2_and_text_metrics(tmp_path):
    from pipeline.config.loader import load
    from pipeline.core.errors import PipelineError
    from pipeline.tasks import TaskParams
    from pipeline.tasks.qa import QAParams

    file = tmp_path / "params.yaml"
    file.write_text("tasks:\n  qa: {type: qa, version_2_with_negative: true, null_score_diff_threshold: -1.5, "
                    "text_metrics: [rouge, bleu]}\n")
    (task,) = load({"tasks.qa": TaskParams}, file=file)
    assert isinstance(task, QAParams)
    assert task.version_2_with_negative and task.null_score_diff_threshold == -1.5
    assert task.text_metrics == ["rouge", "bleu"]
    file.write_text("tasks:\n  qa: {type: qa, text_metrics: [cider]}\n")
    with pytest.raises(PipelineError, match=r"tasks.qa.text_metrics\[0\]"):
        load({"tasks.qa": TaskParams}, file=file)
    # The v2 settings belong to QA tasks only: a classification task does not know the key.
    file.write_text("tasks:\n  cls: {type: classification, version_2_with_negative: true}\n")
    with pytest.raises(PipelineError, match="unknown key 'tasks.cls.version_2_with_negative'"):
        load({"tasks.cls": TaskParams}, file=file)
