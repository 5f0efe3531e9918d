"""Text-overlap metrics written out by hand: corpus BLEU and ROUGE-1/2/L, plus a registry for QA.

Inputs are already tokenised (lists of strings), so the caller decides the tokenisation; the QA task
uses the SQuAD answer normalisation, which makes these numbers comparable with exact match and F1.
Every function returns plain ``float``s in ``[0, 1]``.

METEOR is not here: it matches synonyms through WordNet, and no maintained PyPI package ships the
WordNet data (nltk and ``wn`` download it at run time, which the offline pipeline cannot do).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Literal

Tokens = Sequence[str]


def ngrams(tokens: Tokens, n: int) -> Counter:
    """Counts of the ``n``-grams (as tuples) of one token sequence; empty when it is shorter than ``n``."""
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _check_corpus(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(f"hypotheses and references differ in length: {len(hypotheses)} vs {len(references)}")
    if not hypotheses:
        raise ValueError("hypotheses are empty")
    for i, refs in enumerate(references):
        if isinstance(refs, str) or not refs or isinstance(refs[0], str):
            raise ValueError(f"references[{i}] must be a non-empty list of token lists")


def _closest_length(hyp_len: int, refs: Sequence[Tokens]) -> int:
    """The reference length closest to the hypothesis length, the shorter one on a tie (as in BLEU's paper
    and sacrebleu)."""
    return min((abs(len(r) - hyp_len), len(r)) for r in refs)[1]


def bleu(
    hypotheses: Sequence[Tokens],
    references: Sequence[Sequence[Tokens]],
    max_order: int = 4,
    smooth: Literal["none", "add1"] = "add1",
) -> float:
    """Corpus BLEU (Papineni et al., 2002): geometric mean of modified n-gram precisions times a brevity penalty.

    For each order ``n`` the clipped matches (an n-gram counts at most as often as in the reference that
    has it most often) and the hypothesis n-grams are summed over the whole corpus before dividing; the
    brevity penalty is ``exp(1 - r / c)`` when the total hypothesis length ``c`` is below the summed
    closest reference lengths ``r``, else 1.

    Smoothing matters for short texts such as extractive answers, which often have no 3- or 4-grams:
    ``"none"`` gives 0 whenever some order has no match (the original definition); ``"add1"`` (default)
    adds 1 to the matches and to the count of every order ``n >= 2`` (Lin & Och, 2004, "BLEU+1";
    method 2 of Chen & Cherry, 2014), so a missing order costs a factor instead of zeroing the score. The
    unigram precision is never smoothed: a corpus with no word in common scores 0 either way.

    Args:
        hypotheses: one token list per segment, ``N`` of them.
        references: per segment a non-empty list of reference token lists, ``N`` of them.
        max_order: the longest n-gram (default 4: BLEU-4); precisions are weighted uniformly.
        smooth: ``"add1"`` (default) or ``"none"``.

    Returns:
        BLEU in ``[0, 1]``.
    """
    _check_corpus(hypotheses, references)
    if max_order < 1 or smooth not in ("none", "add1"):
        raise ValueError(f"need max_order >= 1 and smooth in ('none', 'add1'), got {max_order}, {smooth!r}")
    matches, totals = [0] * max_order, [0] * max_order
    hyp_len = ref_len = 0
    for hyp, refs in zip(hypotheses, references):
        hyp_len += len(hyp)
        ref_len += _closest_length(len(hyp), refs)
        for n in range(1, max_order + 1):
            counts = ngrams(hyp, n)
            most = Counter()
            for ref in refs:
                most |= ngrams(ref, n)  # elementwise max over references
            matches[n - 1] += sum((counts & most).values())
            totals[n - 1] += sum(counts.values())
    log_precision = 0.0
    for n in range(1, max_order + 1):
        m, t = matches[n - 1], totals[n - 1]
        if smooth == "add1" and n >= 2:
            m, t = m + 1, t + 1
        if m == 0:
            return 0.0
        log_precision += math.log(m / t) / max_order
    brevity = 1.0 if hyp_len >= ref_len else math.exp(1 - ref_len / hyp_len) if hyp_len else 0.0
    return brevity * math.exp(log_precision)


def _f_measure(overlap: int, hyp_count: int, ref_count: int) -> float:
    """Harmonic mean of ``overlap / hyp_count`` and ``overlap / ref_count`` (0 when either count is 0)."""
    if overlap == 0:
        return 0.0
    return 2 * overlap / (hyp_count + ref_count)


def rouge_n(hypothesis: Tokens, reference: Tokens, n: int) -> float:
    """ROUGE-N F-measure (Lin, 2004) of one pair: F1 of the clipped n-gram overlap.

    Args:
        hypothesis, reference: token lists.
        n: n-gram order (1 for ROUGE-1, 2 for ROUGE-2).
    """
    hyp, ref = ngrams(hypothesis, n), ngrams(reference, n)
    return _f_measure(sum((hyp & ref).values()), sum(hyp.values()), sum(ref.values()))


def lcs_length(a: Tokens, b: Tokens) -> int:
    """Length of the longest common subsequence of two token lists (``O(len(a) * len(b))`` dynamic programme)."""
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(hypothesis: Tokens, reference: Tokens) -> float:
    """ROUGE-L F-measure (beta = 1) of one pair: P = LCS / len(hypothesis), R = LCS / len(reference)."""
    return _f_measure(lcs_length(hypothesis, reference), len(hypothesis), len(reference))


def rouge(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]]) -> dict[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F-measures over segments; a segment with several references
    takes, per score, the best one (as ``rouge-score``'s multi-reference scoring).

    Args:
        hypotheses: one token list per segment, ``N`` of them.
        references: per segment a non-empty list of reference token lists.

    Returns:
        ``{"rouge1", "rouge2", "rougeL"}``, each in ``[0, 1]``.
    """
    _check_corpus(hypotheses, references)
    scorers: dict[str, Callable[[Tokens, Tokens], float]] = {
        "rouge1": lambda h, r: rouge_n(h, r, 1),
        "rouge2": lambda h, r: rouge_n(h, r, 2),
        "rougeL": rouge_l,
    }
    return {
        name: sum(max(score(h, r) for r in refs) for h, refs in zip(hypotheses, references)) / len(hypotheses)
        for name, score in scorers.items()
    }


# Name in ``tasks.<qa>.text_metrics`` -> ``(hypotheses, references) -> {metric key: value in [0, 1]}``.
METRICS: dict[str, Callable[[Sequence[Tokens], Sequence[Sequence[Tokens]]], dict[str, float]]] = {
    "bleu": lambda hyps, refs: {"bleu": bleu(hyps, refs)},
    "rouge": rouge,
}


def compute(names: Sequence[str], hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]]) -> dict[str, float]:
    """The metrics ``names`` (keys of :data:`METRICS`) as percentages in ``[0, 100]``, like SQuAD's EM/F1.

    Raises:
        ValueError: for an unknown name.
    """
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown text metric(s) {unknown} (known: {sorted(METRICS)})")
    out: dict[str, float] = {}
    for name in names:
        out.update({k: 100.0 * v for k, v in METRICS[name](hypotheses, references).items()})
    return out
