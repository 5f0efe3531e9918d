"""SQuAD v1.1 and v2.0 metrics, following the official evaluation scripts (Rajpurkar et al., 2016 and 2018).

Answer normalisation, the maximum over gold answers, v2's HasAns/NoAns split and best-threshold search are
written out here: no maintained PyPI package ships these rules for offline use (the hub's ``squad``/``squad_v2``
``evaluate`` modules are fetched from the hub, transformers 5 dropped its ``squad_metrics`` copy, and
torchmetrics has v1.1 only: no unanswerable questions, no threshold search, and a missing prediction silently
scores 0).

SQuAD code lives in the layer that owns each step, each module named ``squad``: reading the official JSON files
(:mod:`pipeline.data.squad`), windowing contexts into features and turning span logits into answers
(:mod:`pipeline.tasks.squad`, used by the QA task type :mod:`pipeline.tasks.qa`), and scoring answers (here;
wrapped as the ``squad``/``squad_v2`` ``evaluate`` modules in :mod:`pipeline.metrics.modules`).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """SQuAD answer normalisation: lowercase, drop punctuation, drop articles, collapse whitespace.

    The steps run in that order, as in the official v1.1 script, and the order shows: punctuation is
    deleted (not replaced by a space) before articles are matched as whole words, so
    ``"The (a) cat."`` -> ``"cat"`` but ``"the-end"`` -> ``"theend"``.

    Args:
        s: a predicted or gold answer.

    Returns:
        The normalised string, single-space separated, no leading/trailing whitespace.
    """
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCTUATION)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _check_golds(golds: Sequence[str]) -> None:
    # A str is a Sequence too; scoring it character by character would silently be wrong.
    if isinstance(golds, str):
        raise TypeError("golds must be a list of answers, not a single string")
    if len(golds) == 0:
        raise ValueError("golds is empty: every question needs at least one gold answer")


def exact_match(pred: str, golds: Sequence[str]) -> float:
    """1.0 if ``pred`` equals any gold answer after :func:`normalize_answer`, else 0.0.

    Args:
        pred: the predicted answer text.
        golds: the gold answers (at least one).
    """
    _check_golds(golds)
    p = normalize_answer(pred)
    return float(any(p == normalize_answer(g) for g in golds))


def _token_f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    """Bag-of-tokens F1 between two token lists."""
    if not pred_tokens or not gold_tokens:
        # The v1.1 script scores 0 here even when both are empty; we follow the v2.0 script and score
        # 1 for empty-vs-empty so that an exact match always has F1 1. Only gold answers that are
        # nothing but articles/punctuation ever reach this branch.
        return float(pred_tokens == gold_tokens)
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def f1_score(pred: str, golds: Sequence[str]) -> float:
    """Token-level F1 of ``pred`` against each gold answer (after normalisation), the maximum taken.

    Tokens are the whitespace-split normalised strings, counted as a multiset, e.g.
    ``"the cat sat"`` vs ``"a cat sat down"`` -> ``cat sat`` vs ``cat sat down``: P=1, R=2/3, F1=0.8.

    Args:
        pred: the predicted answer text.
        golds: the gold answers (at least one).

    Returns:
        A float in ``[0, 1]``.
    """
    _check_golds(golds)
    p = normalize_answer(pred).split()
    return max(_token_f1(p, normalize_answer(g).split()) for g in golds)


def _check_ids(references: Mapping[str, object], given: Mapping[str, object], what: str) -> None:
    """``ValueError`` if ``references`` is empty or some of its ids are not in ``given`` (the message names
    up to ten of them, calling the missing values ``what``)."""
    if not references:
        raise ValueError("references is empty")
    missing = [qid for qid in references if qid not in given]
    if missing:
        shown = ", ".join(map(repr, missing[:10])) + (f" (+{len(missing) - 10} more)" if len(missing) > 10 else "")
        raise ValueError(f"no {what} for {len(missing)} question id(s): {shown}")


def squad_v1(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """SQuAD v1.1 exact match and F1, averaged over the questions in ``references``.

    Args:
        predictions: ``{question id: predicted text}``. Ids not in ``references`` are ignored.
        references: ``{question id: [gold answer, ...]}``; each list non-empty.

    Returns:
        ``{"exact_match": float, "f1": float}``, both percentages in ``[0, 100]``.

    Raises:
        ValueError: if ``references`` is empty or some of its ids have no prediction (the message names
            them); the official script would quietly score those 0, which hides pipeline bugs.
    """
    _check_ids(references, predictions, "prediction")
    em = sum(exact_match(predictions[qid], golds) for qid, golds in references.items())
    f1 = sum(f1_score(predictions[qid], golds) for qid, golds in references.items())
    n = len(references)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n}


# ---------------------------------------------------------------------------------------------------
# SQuAD v2.0: unanswerable questions, a no-answer threshold and the best-threshold search
# ---------------------------------------------------------------------------------------------------


def _v2_golds(answers: Sequence[str]) -> list[str]:
    """Gold answers as the v2.0 script scores them: those that normalise to nothing are dropped, and a
    question left without any (an unanswerable one) has the single gold ``""``."""
    if isinstance(answers, str):
        raise TypeError("references must map ids to lists of answers, not to a single string")
    golds = [a for a in answers if normalize_answer(a)]
    return golds or [""]


def _best_threshold(
    answered: Mapping[str, float], null: Mapping[str, float], diffs: Mapping[str, float]
) -> tuple[float, float]:
    """The no-answer threshold that maximises the total score, and that score as a percentage.

    A question is predicted unanswerable when its diff is ``> threshold``, so it then scores
    ``null[qid]`` instead of ``answered[qid]``. Start from the threshold below every diff (all
    unanswerable) and raise it past each distinct finite diff in increasing order; a strictly higher
    total moves the best threshold there, so among equal totals the lowest threshold wins, as in the
    official script. Unlike that script, questions with equal diffs flip together (a threshold cannot
    separate them). A diff of ``+inf`` (no valid span at all) is never a candidate: such a question
    has nothing to answer with, so it scores the same either way.

    Args:
        answered, null: per-question score (0..1) when answered with its prediction / when left
            unanswered; same keys as ``diffs``.
        diffs: per-question ``null score - best answer score``.

    Returns:
        ``(threshold, 100 * best total / number of questions)``. The all-unanswered start is reported as
        the largest float below the smallest finite diff (``0.0`` when there is none).
    """
    finite = sorted({d for d in diffs.values() if np.isfinite(d)})
    total = sum(null.values())
    best_score, best_thresh = total, (float(np.nextafter(finite[0], -np.inf)) if finite else 0.0)
    gain_at: dict[float, float] = {}
    for qid, d in diffs.items():
        if np.isfinite(d):
            gain_at[d] = gain_at.get(d, 0.0) + answered[qid] - null[qid]
    for d in finite:
        total += gain_at[d]
        if total > best_score:
            best_score, best_thresh = total, d
    return best_thresh, 100.0 * best_score / len(diffs)


def _v2_raw_scores(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> dict[str, dict]:
    """``{"exact": {qid: 0/1}, "f1": {qid: token F1}}`` of each prediction as given (no threshold applied)."""
    raw: dict[str, dict[str, float]] = {"exact": {}, "f1": {}}
    for qid, answers in references.items():
        golds = _v2_golds(answers)
        pred = normalize_answer(predictions[qid])
        raw["exact"][qid] = float(any(pred == normalize_answer(g) for g in golds))
        raw["f1"][qid] = max(_token_f1(pred.split(), normalize_answer(g).split()) for g in golds)
    return raw


def squad_v2(
    predictions: Mapping[str, str],
    references: Mapping[str, Sequence[str]],
    score_diffs: Mapping[str, float] | None = None,
    threshold: float = 0.0,
) -> dict[str, float]:
    """SQuAD v2.0 metrics, defined as by the official v2.0 evaluation script.

    A prediction of ``""`` means "unanswerable". Unanswerable questions (no gold answer) score 1 for
    ``""`` and 0 for any text; answerable ones score exact match / token F1 against their golds (golds
    that normalise to nothing are ignored). With ``score_diffs`` (the script's "no-answer
    probabilities"; here ``null score - best span score`` from
    :func:`pipeline.tasks.squad.postprocess_predictions_v2`),
    a question whose diff is ``> threshold`` is predicted unanswerable whatever its text, and
    ``best_exact``/``best_f1`` search the threshold that maximises each score. For the search to see
    what *would* be answered, pass the best non-null answer as each prediction (``answers`` of the
    post-processing), not texts already blanked at some threshold.

    Args:
        predictions: ``{question id: text}``; ids not in ``references`` are ignored.
        references: ``{question id: [gold answer, ...]}``; an empty list marks an unanswerable question.
        score_diffs: ``{question id: diff}`` for every reference id, or ``None``: all diffs 0, as the
            official script assumes without a no-answer file.
        threshold: the no-answer threshold applied to ``score_diffs`` (default 0.0).

    Returns:
        ``exact``, ``f1`` (percentages), ``total``; ``HasAns_exact``, ``HasAns_f1``, ``HasAns_total``
        when some question has an answer; ``NoAns_exact``, ``NoAns_f1``, ``NoAns_total`` when some has
        none; ``best_exact``, ``best_exact_thresh``, ``best_f1``, ``best_f1_thresh``. Totals are counts.

    Raises:
        ValueError: if ``references`` is empty or some reference id lacks a prediction or a diff.
    """
    diffs = dict.fromkeys(references, 0.0) if score_diffs is None else score_diffs
    _check_ids(references, predictions, "prediction")
    _check_ids(references, diffs, "score diff")
    has_ans = {qid: len(golds) > 0 for qid, golds in references.items()}
    raw = _v2_raw_scores(predictions, references)
    null = {qid: float(not has_ans[qid]) for qid in references}  # what "" scores
    n = len(references)
    out: dict[str, float] = {"total": n}
    for name, scores in raw.items():
        final = {qid: null[qid] if diffs[qid] > threshold else s for qid, s in scores.items()}
        out[name] = 100.0 * sum(final.values()) / n
        for prefix, flag in (("HasAns", True), ("NoAns", False)):
            subset = [qid for qid in references if has_ans[qid] is flag]
            if subset:
                out[f"{prefix}_{name}"] = 100.0 * sum(final[q] for q in subset) / len(subset)
                out[f"{prefix}_total"] = len(subset)
        thresh, best = _best_threshold(scores, null, {qid: float(diffs[qid]) for qid in references})
        out[f"best_{name}"], out[f"best_{name}_thresh"] = best, thresh
    return out
