"""Classification diagnostics from logits and labels: confusion matrix, precision/recall/F1, ROC and AUC, and the
macro-averaged scores training logs per epoch (:func:`macro_scores`).

Computed by scikit-learn (``confusion_matrix``, ``precision_recall_fscore_support``, ``roc_curve``,
``roc_auc_score``) and scipy (``softmax``); this module fixes the conventions. ``N`` examples, ``C``
classes; confusion rows are the actual class and columns the predicted class; a precision or recall
with nothing to divide by is 0 (scikit-learn's ``zero_division=0``); an AUC that is undefined (the labels
hold one class) is ``None``, JSON ``null``, never NaN.

ROC curves keep one point per distinct score (``drop_intermediate=False``), as the curves and the
``roc.csv`` plot data had before scikit-learn computed them: its default drops the points inside straight
segments, which keeps the area but changes the points a plot or a test sees.
"""

from __future__ import annotations

import numpy as np
import scipy.special
import sklearn.metrics


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(N, C)`` logits in float64 (``scipy.special.softmax``, stable for large logits)."""
    return scipy.special.softmax(np.asarray(logits, dtype=np.float64), axis=1)


def _class_ids(values, num_classes: int, what: str) -> np.ndarray:
    """``values`` as an int64 array ``(N,)``; ``ValueError`` naming ``what`` for an id outside ``[0, C)``."""
    ids = np.asarray(values, dtype=np.int64).reshape(-1)
    if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
        raise ValueError(f"{what} must be class ids in [0, {num_classes}), got {ids.min()}..{ids.max()}")
    return ids


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C, C)`` int64 counts ``[actual, predicted]`` of ``(N,)`` gold and predicted class ids.

    Raises:
        ValueError: a label or prediction outside ``[0, num_classes)`` (scikit-learn would drop it silently).
    """
    y, p = _class_ids(labels, num_classes, "labels"), _class_ids(preds, num_classes, "preds")
    return sklearn.metrics.confusion_matrix(y, p, labels=np.arange(num_classes)).astype(np.int64)


def per_class(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> dict[str, list]:
    """Per-class precision, recall, F1 and support of ``(N,)`` gold and predicted class ids.

    A class never predicted has precision 0 (never present: recall 0), and F1 0 when both are 0.

    Returns:
        ``{"precision", "recall", "f1": list of C floats, "support": list of C ints}`` (class order).
    """
    y, p = _class_ids(labels, num_classes, "labels"), _class_ids(preds, num_classes, "preds")
    precision, recall, f1, support = sklearn.metrics.precision_recall_fscore_support(
        y, p, labels=np.arange(num_classes), zero_division=0)
    return {"precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist(),
            "support": support.astype(np.int64).tolist()}


def _both_classes(positive: np.ndarray) -> bool:
    return 0 < int(positive.sum()) < positive.size


def roc_curve(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC points of a score against binary truth, one per distinct score (Fawcett, 2006; scikit-learn).

    Args:
        positive: ``(N,)`` bools, the positive class; both classes must occur.
        scores: ``(N,)`` floats, higher means more positive.

    Returns:
        ``(fpr, tpr, thresholds)``, each ``(P,)``, starting at (0, 0) with threshold ``+inf``; tied scores
        make one point (so the curve of a constant score is the diagonal).

    Raises:
        ValueError: when ``positive`` holds one class only (a rate would be 0/0).
    """
    positive = np.asarray(positive, dtype=bool)
    if not _both_classes(positive):
        raise ValueError("a ROC curve needs both positive and negative examples")
    fpr, tpr, thresholds = sklearn.metrics.roc_curve(positive, np.asarray(scores, dtype=np.float64),
                                                      drop_intermediate=False)
    return fpr, tpr, thresholds


def roc_auc(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve of ``(N,)`` scores against ``(N,)`` binary truth (``roc_auc_score``): the
    probability that a random positive scores above a random negative, ties counting half (Hanley & McNeil,
    1982). ``None`` when ``positive`` holds one class only (undefined)."""
    positive = np.asarray(positive, dtype=bool)
    if not _both_classes(positive):
        return None
    return float(sklearn.metrics.roc_auc_score(positive, np.asarray(scores, dtype=np.float64)))


def roc(logits: np.ndarray, labels: np.ndarray) -> dict:
    """ROC curve(s) and AUC from ``(N, C)`` logits and ``(N,)`` gold class ids.

    Binary (C == 2): the curve of the class-1 probability. Multi-class: one-vs-rest curves of each class's
    probability and the macro mean of their AUCs. A class that is absent from ``labels`` (or is every label)
    has no curve and stays out of the mean, which is ``None`` when no class is left.

    Returns:
        ``{"auc": float | None, "curves": {class id: {"fpr": [...], "tpr": [...]}}}``.
    """
    probs = softmax(logits)
    labels = _class_ids(labels, probs.shape[1], "labels")
    classes = [1] if probs.shape[1] == 2 else range(probs.shape[1])
    curves, aucs = {}, []
    for c in classes:
        positive = labels == c
        if _both_classes(positive):
            fpr, tpr, _ = roc_curve(positive, probs[:, c])
            curves[int(c)] = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
            aucs.append(roc_auc(positive, probs[:, c]))
    return {"auc": float(np.mean(aucs)) if aucs else None, "curves": curves}


def classification_report(logits: np.ndarray, labels: np.ndarray) -> dict:
    """Everything above from ``(N, C)`` logits and ``(N,)`` labels.

    Returns:
        ``{"confusion": (C, C) list, "per_class": per_class(...), "macro_f1", "auc", "roc": curves}``
        (``macro_f1``: the mean F1 over all C classes); for C == 1 (regression) an empty dict, as there are
        no classes to confuse.
    """
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[1] < 2:
        return {}
    num_classes = logits.shape[1]
    preds = logits.argmax(axis=1)
    classes = per_class(labels, preds, num_classes)
    curves = roc(logits, labels)
    return {"confusion": confusion_matrix(labels, preds, num_classes).tolist(), "per_class": classes,
            "macro_f1": float(np.mean(classes["f1"])), "auc": curves["auc"], "roc": curves["curves"]}


def macro_scores(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> dict[str, float]:
    """Accuracy and macro-averaged precision, recall and F1 of ``(N,)`` gold and predicted class ids.

    Macro: the unweighted mean over the ``num_classes`` classes of each class's score (scikit-learn's
    ``precision_recall_fscore_support(average="macro")``); a class never predicted (never present) has
    precision (recall) 0, scikit-learn's ``zero_division=0``, the convention of
    the other functions here, so the last epoch's ``macro_f1`` (:func:`pipeline.train.supervised.epoch_scores`)
    is the evaluate stage's on the same model.

    Returns:
        ``{"accuracy", "macro_precision", "macro_recall", "macro_f1"}``, fractions in [0, 1].
    """
    precision, recall, f1, _ = sklearn.metrics.precision_recall_fscore_support(
        labels, preds, labels=np.arange(num_classes), average="macro", zero_division=0)
    return {"accuracy": float(sklearn.metrics.accuracy_score(labels, preds)), "macro_precision": float(precision),
            "macro_recall": float(recall), "macro_f1": float(f1)}
