"""Classification diagnostics against hand-computed values and scikit-learn as a reference."""

import numpy as np
import pytest

from pipeline.diagnostics import auc, classification_report, confusion_matrix, per_class, roc, roc_curve, softmax

LABELS = np.array([0, 0, 1, 1, 1, 2])
PREDS = np.array([0, 1, 1, 1, 2, 2])


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(LABELS, PREDS, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 1], [0, 0, 1]]


def test_per_class_precision_recall_f1_by_hand():
    got = per_class(confusion_matrix(LABELS, PREDS, 3))
    # class 0: tp 1, predicted 1, actual 2; class 1: tp 2, predicted 3, actual 3; class 2: tp 1, pred 2, actual 1
    assert got["precision"] == pytest.approx([1.0, 2 / 3, 0.5])
    assert got["recall"] == pytest.approx([0.5, 2 / 3, 1.0])
    assert got["f1"] == pytest.approx([2 / 3, 2 / 3, 2 / 3])
    assert got["support"] == [2, 3, 1]


def test_never_predicted_class_has_zero_precision_not_nan():
    got = per_class(confusion_matrix([0, 1], [0, 0], 2))
    assert got["precision"] == [0.5, 0.0] and got["recall"] == [1.0, 0.0] and got["f1"][1] == 0.0


def test_roc_curve_and_auc_by_hand():
    # scores 0.9(+) 0.8(-) 0.7(+) 0.1(-): thresholds pass +, -, +, -
    fpr, tpr, thr = roc_curve(np.array([1, 0, 1, 0], bool), np.array([0.9, 0.8, 0.7, 0.1]))
    assert fpr.tolist() == [0, 0, 0.5, 0.5, 1] and tpr.tolist() == [0, 0.5, 0.5, 1, 1]
    assert thr[0] == np.inf and thr[1:].tolist() == [0.9, 0.8, 0.7, 0.1]
    assert auc(fpr, tpr) == pytest.approx(0.75)  # 3 of 4 positive/negative pairs ranked right


def test_tied_scores_make_one_point_and_perfect_scores_give_auc_one():
    fpr, tpr, _ = roc_curve(np.array([1, 0, 1, 0], bool), np.zeros(4))
    assert fpr.tolist() == [0, 1] and tpr.tolist() == [0, 1] and auc(fpr, tpr) == 0.5
    fpr, tpr, _ = roc_curve(np.array([1, 1, 0], bool), np.array([3.0, 2.0, 1.0]))
    assert auc(fpr, tpr) == 1.0


def test_softmax_rows_sum_to_one_and_survive_large_logits():
    p = softmax(np.array([[1000.0, 1000.0], [0.0, np.log(3.0)]]))
    assert np.allclose(p, [[0.5, 0.5], [0.25, 0.75]])


def test_against_scikit_learn_binary_and_multiclass():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for classes in (2, 4):
        labels = rng.integers(0, classes, 300)
        logits = rng.normal(size=(300, classes)) + 1.5 * np.eye(classes)[labels]
        report = classification_report(logits, labels)
        preds = logits.argmax(1)
        assert report["confusion"] == metrics.confusion_matrix(labels, preds).tolist()
        p, r, f, s = metrics.precision_recall_fscore_support(labels, preds, zero_division=0)
        assert np.allclose(report["per_class"]["precision"], p) and np.allclose(report["per_class"]["recall"], r)
        assert np.allclose(report["per_class"]["f1"], f) and report["per_class"]["support"] == s.tolist()
        assert report["macro_f1"] == pytest.approx(metrics.f1_score(labels, preds, average="macro"))
        probs = softmax(logits)
        if classes == 2:
            expected = metrics.roc_auc_score(labels, probs[:, 1])
            fpr, tpr, _ = metrics.roc_curve(labels, probs[:, 1], drop_intermediate=False)
            assert np.allclose(report["roc"][1]["fpr"], fpr) and np.allclose(report["roc"][1]["tpr"], tpr)
        else:
            expected = metrics.roc_auc_score(labels, probs, multi_class="ovr", average="macro")
            assert sorted(report["roc"]) == list(range(classes))
        assert report["auc"] == pytest.approx(expected)


def test_better_logits_give_higher_auc_and_regression_has_no_report():
    labels = np.array([0, 1] * 50)
    noise = np.random.default_rng(1).normal(size=(100, 2))
    weak, strong = noise + 0.3 * np.eye(2)[labels], noise + 3 * np.eye(2)[labels]
    assert roc(strong, labels)["auc"] > roc(weak, labels)["auc"] > 0.5
    assert classification_report(np.zeros((5, 1)), np.zeros(5)) == {}
