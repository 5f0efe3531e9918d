"""Classification diagnostics against hand-computed values and the definitions of the rates and areas."""

import json

import numpy as np
import pytest

from pipeline.metrics.diagnostics import classification_report, confusion_matrix, per_class, roc, roc_auc
from pipeline.metrics.diagnostics import roc_curve, softmax

LABELS = np.array([0, 0, 1, 1, 1, 2])
PREDS = np.array([0, 1, 1, 1, 2, 2])


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(LABELS, PREDS, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 1], [0, 0, 1]]  # rows actual, columns predicted
    assert cm.dtype == np.int64
    # A class that never occurs still has its row and column.
    assert confusion_matrix([0, 0], [0, 0], 3).tolist() == [[2, 0, 0], [0, 0, 0], [0, 0, 0]]


def test_out_of_range_class_ids_are_an_error_not_dropped():
    with pytest.raises(ValueError, match="preds must be class ids in \\[0, 2\\)"):
        confusion_matrix([0, 1], [0, 2], 2)
    with pytest.raises(ValueError, match="labels"):
        per_class([-1, 1], [0, 1], 2)


def test_per_class_precision_recall_f1_by_hand():
    got = per_class(LABELS, PREDS, 3)
    # class 0: tp 1, predicted 1, actual 2; class 1: tp 2, predicted 3, actual 3; class 2: tp 1, pred 2, actual 1
    assert got["precision"] == pytest.approx([1.0, 2 / 3, 0.5])
    assert got["recall"] == pytest.approx([0.5, 2 / 3, 1.0])
    assert got["f1"] == pytest.approx([2 / 3, 2 / 3, 2 / 3])
    assert got["support"] == [2, 3, 1]


def test_never_predicted_class_has_zero_precision_not_nan():
    got = per_class([0, 1], [0, 0], 2)
    assert got["precision"] == [0.5, 0.0] and got["recall"] == [1.0, 0.0] and got["f1"][1] == 0.0
    absent = per_class([0, 0], [0, 0], 3)  # class 2 neither present nor predicted
    assert absent["precision"][2] == absent["recall"][2] == absent["f1"][2] == 0.0 and absent["support"][2] == 0


def test_roc_curve_and_auc_by_hand():
    # scores 0.9(+) 0.8(-) 0.7(+) 0.1(-): thresholds pass +, -, +, -
    positive, scores = np.array([1, 0, 1, 0], bool), np.array([0.9, 0.8, 0.7, 0.1])
    fpr, tpr, thr = roc_curve(positive, scores)
    assert fpr.tolist() == [0, 0, 0.5, 0.5, 1] and tpr.tolist() == [0, 0.5, 0.5, 1, 1]
    assert thr[0] == np.inf and thr[1:].tolist() == [0.9, 0.8, 0.7, 0.1]
    assert roc_auc(positive, scores) == pytest.approx(0.75)  # 3 of 4 positive/negative pairs ranked right


def test_tied_scores_make_one_point_and_perfect_scores_give_auc_one():
    fpr, tpr, _ = roc_curve(np.array([1, 0, 1, 0], bool), np.zeros(4))
    assert fpr.tolist() == [0, 1] and tpr.tolist() == [0, 1]
    assert roc_auc(np.array([1, 0, 1, 0], bool), np.zeros(4)) == 0.5  # ties count half
    assert roc_auc(np.array([1, 1, 0], bool), np.array([3.0, 2.0, 1.0])) == 1.0
    # Positives {4, 2} vs negatives {2, 1}: 4>2, 4>1, 2=2 (a tie: half), 2>1 -> 3.5 of 4 pairs
    assert roc_auc(np.array([1, 1, 0, 0], bool), np.array([4.0, 2.0, 2.0, 1.0])) == pytest.approx(3.5 / 4)


def test_auc_of_one_class_is_none_and_its_curve_an_error():
    assert roc_auc(np.array([1, 1, 1], bool), np.array([0.1, 0.5, 0.9])) is None
    assert roc_auc(np.zeros(3, bool), np.array([0.1, 0.5, 0.9])) is None
    with pytest.raises(ValueError, match="both positive and negative"):
        roc_curve(np.ones(3, bool), np.array([0.1, 0.5, 0.9]))


def test_softmax_rows_sum_to_one_and_survive_large_logits():
    p = softmax(np.array([[1000.0, 1000.0], [0.0, np.log(3.0)]]))
    assert np.allclose(p, [[0.5, 0.5], [0.25, 0.75]]) and p.dtype == np.float64


def test_binary_report_by_hand():
    # Class-1 probabilities sigmoid(l1 - l0) follow the logit differences 2, 1, -1, 0.5, -2.
    logits = np.array([[0, 2], [0, 1], [1, 0], [0, 0.5], [2, 0]], dtype=float)
    labels = np.array([1, 0, 1, 1, 0])
    report = classification_report(logits, labels)
    # predictions 1, 1, 0, 1, 0 -> [[1, 1], [1, 2]]
    assert report["confusion"] == [[1, 1], [1, 2]]
    assert report["per_class"]["precision"] == pytest.approx([0.5, 2 / 3])
    assert report["macro_f1"] == pytest.approx((0.5 + 2 / 3) / 2)
    # Scores in order +(2) -(1) +(0.5) +(-1) -(-2). Pairs ranked right, positives {2, 0.5, -1} vs negatives
    # {1, -2}: 2>1, 2>-2, 0.5>-2, -1>-2 -> 4 of 6.
    assert report["auc"] == pytest.approx(4 / 6)
    assert list(report["roc"]) == [1]  # binary: the class-1 curve only
    # One point per distinct score: (0.5, 2/3) lies inside the vertical segment from (0.5, 1/3) to (0.5, 1)
    # and is kept (scikit-learn's default drop_intermediate=True would drop it).
    assert report["roc"][1]["fpr"] == [0, 0, 0.5, 0.5, 0.5, 1] and report["roc"][1]["tpr"] == pytest.approx(
        [0, 1 / 3, 1 / 3, 2 / 3, 1, 1])


def test_multiclass_auc_is_the_macro_mean_over_classes_present():
    # Three classes, class 2 never a label: its curve is left out, and so is its AUC from the mean.
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.4, 0.5, 0.1], [0.2, 0.6, 0.2], [0.3, 0.3, 0.4]]))
    labels = np.array([0, 0, 1, 1])
    got = roc(logits, labels)
    # class 0 scores .7 .4 (+) vs .2 .3 (-): 4 of 4 pairs right. class 1 scores .6 .3 (+) vs .2 .5 (-):
    # .6 > .2, .6 > .5, .3 > .2, .3 < .5 -> 3 of 4. Mean (1 + 3/4) / 2.
    assert sorted(got["curves"]) == [0, 1]
    assert got["auc"] == pytest.approx(0.875)


def test_undefined_auc_is_null_in_strict_json():
    report = classification_report(np.array([[0.3, 0.1], [0.2, 0.5], [1.0, 0.0]]), np.array([1, 1, 1]))
    assert report["auc"] is None and report["roc"] == {}
    assert report["confusion"] == [[0, 0], [2, 1]]
    json.dumps(report, allow_nan=False)  # raises on NaN or infinity
    three = classification_report(np.eye(3)[[0, 0]], np.array([0, 0]))
    assert three["auc"] is None and three["roc"] == {}
    json.dumps(three, allow_nan=False)


def test_against_scikit_learn_multiclass_averaging():
    # Our macro AUC averages per-class binary AUCs; scikit-learn's one-vs-rest macro AUC computes the same
    # quantity through its own multi-class code path, when every class occurs.
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4)) + 1.5 * np.eye(4)[labels]
    report = classification_report(logits, labels)
    assert report["auc"] == pytest.approx(sk.roc_auc_score(labels, softmax(logits), multi_class="ovr"))
    assert report["macro_f1"] == pytest.approx(sk.f1_score(labels, logits.argmax(1), average="macro"))
    assert sorted(report["roc"]) == [0, 1, 2, 3]
    json.dumps(report, allow_nan=False)


def test_better_logits_give_higher_auc_and_regression_has_no_report():
    labels = np.array([0, 1] * 50)
    noise = np.random.default_rng(1).normal(size=(100, 2))
    weak, strong = noise + 0.3 * np.eye(2)[labels], noise + 3 * np.eye(2)[labels]
    assert roc(strong, labels)["auc"] > roc(weak, labels)["auc"] > 0.5
    assert classification_report(np.zeros((5, 1)), np.zeros(5)) == {}
