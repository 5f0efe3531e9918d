"""Classification diagnostics from logits and labels: confusion matrix, precision/recall/F1, ROC and AUC.

Pure numpy, so the numbers can be checked by hand. Conventions: ``N`` examples, ``C`` classes,
confusion rows are the actual class and columns the predicted class.
"""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(N, C)`` logits, computed stably (max subtracted first)."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C, C)`` int64 counts: ``[actual, predicted]``."""
    out = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(out, (np.asarray(labels, dtype=np.int64), np.asarray(preds, dtype=np.int64)), 1)
    return out


def per_class(confusion: np.ndarray) -> dict[str, list[float]]:
    """Per-class precision, recall, F1 and support from a confusion matrix.

    A class never predicted has precision 0 (and never present, recall 0), the usual zero-division choice.

    Returns:
        ``{"precision", "recall", "f1": list of C floats, "support": list of C ints}``.
    """
    cm = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(cm)
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist(),
            "support": actual.astype(np.int64).tolist()}


def roc_curve(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC points of a score against binary truth, one point per distinct threshold.

    Args:
        positive: ``(N,)`` bools, the positive class.
        scores: ``(N,)`` floats, higher means more positive.

    Returns:
        ``(fpr, tpr, thresholds)``, each ``(P,)``, starting at (0, 0) with threshold ``+inf``; tied scores
        make one point (so the curve of a constant score is the diagonal).
    """
    positive = np.asarray(positive, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], positive[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # last index of each run of tied scores
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    p, n = max(int(positive.sum()), 1), max(int((~positive).sum()), 1)
    return np.r_[0.0, fps / n], np.r_[0.0, tps / p], np.r_[np.inf, s[last]]


def auc(x: np.ndarray, y: np.ndarray) -> float:
    """Area under a curve by the trapezoidal rule (``x`` ascending)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def roc(logits: np.ndarray, labels: np.ndarray) -> dict:
    """ROC curve(s) and AUC from ``(N, C)`` logits.

    Binary (C == 2): one curve of the class-1 probability. Multi-class: one-vs-rest curve per class and the
    macro mean of their AUCs (classes absent from ``labels`` are left out of the mean).

    Returns:
        ``{"auc": float, "curves": {class: {"fpr": [...], "tpr": [...]}}}``.
    """
    probs = softmax(logits)
    labels = np.asarray(labels, dtype=np.int64)
    classes = [1] if probs.shape[1] == 2 else range(probs.shape[1])
    curves, aucs = {}, []
    for c in classes:
        positive = labels == c
        fpr, tpr, _ = roc_curve(positive, probs[:, c])
        curves[int(c)] = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
        if 0 < positive.sum() < len(labels):
            aucs.append(auc(fpr, tpr))
    return {"auc": float(np.mean(aucs)) if aucs else float("nan"), "curves": curves}


def classification_report(logits: np.ndarray, labels: np.ndarray) -> dict:
    """Everything above from ``(N, C)`` logits and ``(N,)`` labels.

    Returns:
        ``{"confusion": (C, C) list, "per_class": per_class(...), "macro_f1", "auc", "roc": curves}``;
        for C == 1 (regression) an empty dict, as there are no classes to confuse.
    """
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[1] < 2:
        return {}
    num_classes = logits.shape[1]
    cm = confusion_matrix(labels, logits.argmax(axis=1), num_classes)
    classes = per_class(cm)
    curves = roc(logits, labels)
    return {"confusion": cm.tolist(), "per_class": classes, "macro_f1": float(np.mean(classes["f1"])),
            "auc": curves["auc"], "roc": curves["curves"]}
