"""GLUE metrics: classification and regression scores (scikit-learn, scipy), by the hub ``glue`` metric's configs.

Classification and regression metrics call the libraries that define them for the field: scikit-learn's
``accuracy_score``, ``f1_score`` and ``matthews_corrcoef`` and scipy's ``pearsonr``/``spearmanr``/``rankdata``
(the hub's ``glue`` metric calls the same ones for F1, Matthews and the correlations). What is left here is
input checking and one convention: a metric that is undefined for the inputs (a correlation with a
constant side) is ``None``, which a metrics file stores as JSON ``null``; NaN would make the file invalid
JSON. Each function names its definition's source.

:mod:`pipeline.metrics.modules` wraps :func:`glue_scores` as the ``glue`` ``evaluate`` module; the GLUE task
type that scores with it is :mod:`pipeline.tasks.glue`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import scipy.stats
import sklearn.metrics

# Compiled once: these run for every answer of every example.
def _as_label_arrays(preds, labels) -> tuple[np.ndarray, np.ndarray]:
    """Both sequences as 1-D arrays of equal, non-zero length (else ``ValueError``)."""
    p, y = np.asarray(preds).reshape(-1), np.asarray(labels).reshape(-1)
    if p.shape != y.shape:
        raise ValueError(f"preds and labels differ in length: {p.size} vs {y.size}")
    if p.size == 0:
        raise ValueError("preds and labels are empty")
    return p, y


def accuracy(preds: Sequence[int] | np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """Fraction of positions where ``preds`` equals ``labels`` (scikit-learn ``accuracy_score``).

    Args:
        preds: predicted class ids, shape ``(N,)`` (list or array).
        labels: gold class ids, shape ``(N,)``.

    Returns:
        A float in ``[0, 1]``. Raises ``ValueError`` on empty or mismatched inputs.
    """
    p, y = _as_label_arrays(preds, labels)
    return float(sklearn.metrics.accuracy_score(y, p))


def binary_f1(preds: Sequence[int] | np.ndarray, labels: Sequence[int] | np.ndarray, positive: int = 1) -> float:
    """F1 of the ``positive`` class, ``2 TP / (2 TP + FP + FN)`` (scikit-learn ``f1_score``; MRPC/QQP's GLUE metric).

    Every other class id counts as negative, so multi-class inputs are fine (the hub's ``glue`` metric would
    refuse them).

    Args:
        preds: predicted class ids, shape ``(N,)``.
        labels: gold class ids, shape ``(N,)``.
        positive: the class counted as positive (default ``1``).

    Returns:
        A float in ``[0, 1]``; ``0.0`` when no prediction and no label is positive (scikit-learn's
        ``zero_division=0``, as the hub's ``glue`` metric reports it).
    """
    p, y = _as_label_arrays(preds, labels)
    scores = sklearn.metrics.f1_score(y, p, labels=[positive], average=None, zero_division=0)
    return float(scores[0])


def matthews_corrcoef(preds: Sequence[int] | np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """Matthews correlation coefficient (Matthews, 1975; multi-class form of Gorodkin, 2004; CoLA's GLUE
    metric), by scikit-learn ``matthews_corrcoef``.

    From the confusion matrix with ``s = N`` examples, ``c`` correct, gold counts ``t_k`` and predicted counts
    ``p_k``: ``(c s - t.p) / sqrt((s^2 - p.p) (s^2 - t.t))``; for two classes
    ``(TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))``.

    Args:
        preds: predicted class ids, shape ``(N,)``.
        labels: gold class ids, shape ``(N,)``.

    Returns:
        A float in ``[-1, 1]``. When all predictions or all labels are one class the formula is 0/0; then
        this returns ``0.0``, not ``None``: that is the value scikit-learn, the hub's ``glue`` metric and
        so published CoLA scores use for a constant classifier (no better than chance), and a report
        comparing variants needs a number there. Raises ``ValueError`` on empty or mismatched inputs.
    """
    p, y = _as_label_arrays(preds, labels)
    with warnings.catch_warnings():  # one class in both: scikit-learn warns about the matrix shape, then gives 0.0
        warnings.filterwarnings("ignore", message="A single label was found", category=UserWarning)
        return float(sklearn.metrics.matthews_corrcoef(y, p))


def _as_float_arrays(preds, labels) -> tuple[np.ndarray, np.ndarray]:
    """Both sequences as 1-D finite float64 arrays of equal, non-zero length (else ``ValueError``)."""
    p, y = _as_label_arrays(preds, labels)
    p, y = p.astype(np.float64), y.astype(np.float64)
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(y))):
        raise ValueError("preds or labels contain NaN or infinite values")
    return p, y


def _correlation(statistic: Callable, p: np.ndarray, y: np.ndarray) -> float | None:
    """``statistic(p, y).statistic`` as a float, or ``None`` when undefined (a constant side, ``N == 1``)."""
    if np.all(p == p[0]) or np.all(y == y[0]):  # checked first: scipy would warn and return NaN
        return None
    # Correlations are invariant to positive scaling, and scaling each side to [-1, 1] keeps scipy exact
    # on subnormal values (scipy 1.17 gives r = 0.82, not 1, for x = [0, 0, 5e-324], y = [0, 0, .5]).
    p, y = p / np.abs(p).max(), y / np.abs(y).max()
    with warnings.catch_warnings():  # near-constant inputs warn; the result is checked below
        warnings.simplefilter("ignore")
        r = float(statistic(p, y).statistic)
    return r if np.isfinite(r) else None


def pearson(preds: Sequence[float] | np.ndarray, labels: Sequence[float] | np.ndarray) -> float | None:
    """Pearson correlation between predictions and gold scores (STS-B's GLUE metric), by ``scipy.stats.pearsonr``.

    Args:
        preds: predicted scores, shape ``(N,)``.
        labels: gold scores, shape ``(N,)``.

    Returns:
        A float in ``[-1, 1]``, or ``None`` when undefined (either side constant, which includes ``N == 1``),
        where scipy returns NaN. Raises ``ValueError`` on empty, mismatched or non-finite inputs.
    """
    return _correlation(scipy.stats.pearsonr, *_as_float_arrays(preds, labels))


def rank_average(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``, ties given the mean of the ranks they span (``scipy.stats.rankdata``,
    ``method="average"``): ``[10, 20, 20, 5]`` -> ``[2, 3.5, 3.5, 1]``.

    Args:
        values: shape ``(N,)``.

    Returns:
        float64 ranks, shape ``(N,)``.
    """
    return scipy.stats.rankdata(np.asarray(values).reshape(-1), method="average").astype(np.float64)


def spearman(preds: Sequence[float] | np.ndarray, labels: Sequence[float] | np.ndarray) -> float | None:
    """Spearman rank correlation, the Pearson correlation of the average ranks (STS-B's GLUE metric), by
    ``scipy.stats.spearmanr``.

    Args:
        preds: predicted scores, shape ``(N,)``.
        labels: gold scores, shape ``(N,)``.

    Returns:
        A float in ``[-1, 1]``, or ``None`` when undefined (either side constant). Raises ``ValueError`` on
        empty, mismatched or non-finite inputs.
    """
    return _correlation(scipy.stats.spearmanr, *_as_float_arrays(preds, labels))


# The GLUE metrics by name -> (predictions (N,), labels (N,)) -> value; class ids, or floats for regression.
GLUE_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float | None]] = {
    "accuracy": accuracy,
    "f1": binary_f1,
    "matthews_correlation": matthews_corrcoef,
    "pearson": pearson,
    "spearmanr": spearman,
}
_ACC, _ACC_F1 = ("accuracy",), ("accuracy", "f1")
# The configs of the hub's ``glue`` metric and the metrics each reports (Wang et al., 2019; HANS: McCoy et al., 2019).
GLUE_CONFIGS: dict[str, tuple[str, ...]] = {
    "cola": ("matthews_correlation",),
    "stsb": ("pearson", "spearmanr"),
    "mrpc": _ACC_F1,
    "qqp": _ACC_F1,
    **dict.fromkeys(("sst2", "mnli", "mnli_mismatched", "mnli_matched", "qnli", "rte", "wnli", "hans"), _ACC),
}


def glue_scores(config: str, preds: Sequence | np.ndarray, labels: Sequence | np.ndarray) -> dict[str, float | None]:
    """The metrics of the GLUE config ``config`` (a key of :data:`GLUE_CONFIGS`) of ``preds`` against ``labels``.

    Raises:
        KeyError: for an unknown config (the message lists the known ones).
    """
    if config not in GLUE_CONFIGS:
        raise KeyError(f"unknown GLUE config {config!r}: choose one of {sorted(GLUE_CONFIGS)}")
    return {name: GLUE_METRICS[name](preds, labels) for name in GLUE_CONFIGS[config]}
