"""Text-overlap metrics: corpus BLEU (sacrebleu), ROUGE-1/2/L (rouge-score), METEOR (nltk with WordNet), plus a
registry for QA.

Inputs are already tokenised (lists of strings), so the caller decides the tokenisation; the QA task
uses the SQuAD answer normalisation, which makes these numbers comparable with exact match and F1. The
tokens are joined with spaces and handed to the libraries with whitespace tokenisation (sacrebleu's
``tokenize="none"``, a whitespace tokenizer for rouge-score), so a token must be non-empty and hold no
whitespace. Every function returns plain ``float``s in ``[0, 1]``.

sacrebleu is the reference BLEU implementation (Post, 2018) and rouge-score Google's reimplementation of
the ROUGE-1.5.5 scorer that the hub's ``rouge`` metric wraps; both run offline. On every hand-counted case
of the tests they give the values the hand-written code of earlier versions gave, to the last few ulps.

METEOR (Banerjee & Lavie, 2005) is nltk's ``nltk.translate.meteor_score``; it matches words exactly, by
Porter stem and as WordNet synonyms. No PyPI package ships WordNet (nltk downloads it at run time, which the
offline pipeline cannot do), so it is read from the WordNet 3.0 database files of Debian's ``wordnet-base``
package (``/usr/share/wordnet``, or the directory in ``WNSEARCHDIR``, WordNet's own variable) and nltk comes
from the ``meteor`` extra (``pip install -e ".[meteor]"``).
"""

from __future__ import annotations

import functools
import importlib.util
import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

Tokens = Sequence[str]


def _check_corpus(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(f"hypotheses and references differ in length: {len(hypotheses)} vs {len(references)}")
    if not hypotheses:
        raise ValueError("hypotheses are empty")
    for i, refs in enumerate(references):
        if isinstance(refs, str) or not refs or isinstance(refs[0], str):
            raise ValueError(f"references[{i}] must be a non-empty list of token lists")
    for tokens in (*hypotheses, *(r for refs in references for r in refs)):
        _check_tokens(tokens)


def _check_tokens(tokens: Tokens) -> None:
    """``ValueError`` unless every token is a non-empty string without whitespace (the libraries split on it)."""
    if isinstance(tokens, str):
        raise ValueError(f"expected a list of tokens, got the string {tokens!r}")
    for token in tokens:
        if not isinstance(token, str) or not token or any(ch.isspace() for ch in token):
            raise ValueError(f"tokens must be non-empty strings without whitespace, got {token!r}")


def bleu(
    hypotheses: Sequence[Tokens],
    references: Sequence[Sequence[Tokens]],
    max_order: int = 4,
    smooth: Literal["none", "add1"] = "add1",
) -> float:
    """Corpus BLEU (Papineni et al., 2002) by sacrebleu: geometric mean of modified n-gram precisions times a
    brevity penalty.

    For each order ``n`` the clipped matches (an n-gram counts at most as often as in the reference that
    has it most often) and the hypothesis n-grams are summed over the whole corpus before dividing; the
    brevity penalty is ``exp(1 - r / c)`` when the total hypothesis length ``c`` is below the summed
    closest reference lengths ``r`` (the shorter one on a tie), else 1.

    Smoothing matters for short texts such as extractive answers, which often have no 3- or 4-grams:
    ``"none"`` gives 0 whenever some order has no match (the original definition); ``"add1"`` (default)
    adds 1 to the matches and to the count of every order ``n >= 2`` (Lin & Och, 2004, "BLEU+1"; method 2
    of Chen & Cherry, 2014; sacrebleu's ``add-k`` with k = 1), so a missing order costs a factor instead of
    zeroing the score. The unigram precision is never smoothed: a corpus with no word in common scores 0.

    Args:
        hypotheses: one token list per segment, ``N`` of them.
        references: per segment a non-empty list of reference token lists, ``N`` of them; segments may have
            different numbers of references.
        max_order: the longest n-gram (default 4: BLEU-4); precisions are weighted uniformly.
        smooth: ``"add1"`` (default) or ``"none"``.

    Returns:
        BLEU in ``[0, 1]``.
    """
    _check_corpus(hypotheses, references)
    if max_order < 1 or smooth not in ("none", "add1"):
        raise ValueError(f"need max_order >= 1 and smooth in ('none', 'add1'), got {max_order}, {smooth!r}")
    from sacrebleu.metrics import BLEU  # here: only QA tasks that ask for BLEU need it

    metric = BLEU(tokenize="none", smooth_method="add-k" if smooth == "add1" else "none", smooth_value=1,
                  max_ngram_order=max_order, effective_order=False)
    # sacrebleu takes one stream per reference position; a segment with fewer references gets None there.
    width = max(len(refs) for refs in references)
    streams = [[" ".join(refs[k]) if k < len(refs) else None for refs in references] for k in range(width)]
    return metric.corpus_score([" ".join(h) for h in hypotheses], streams).score / 100


class _Whitespace:
    """rouge-score tokenizer that keeps the caller's tokens (its default lowercases and drops non-ASCII)."""

    @staticmethod
    def tokenize(text: str) -> list[str]:
        return text.split()


@functools.cache
def _rouge_scorer(kinds: tuple[str, ...]):
    from rouge_score.rouge_scorer import RougeScorer  # here: it imports nltk (seconds), only ROUGE needs it

    return RougeScorer(list(kinds), tokenizer=_Whitespace())


def _rouge_scores(kinds: tuple[str, ...], hypothesis: Tokens, references: Sequence[Tokens]) -> dict[str, float]:
    """rouge-score F-measures ``{kind: F}`` of one hypothesis, the best reference per kind."""
    best = _rouge_scorer(kinds).score_multi([" ".join(r) for r in references], " ".join(hypothesis))
    return {kind: float(best[kind].fmeasure) for kind in kinds}


def rouge_n(hypothesis: Tokens, reference: Tokens, n: int) -> float:
    """ROUGE-N F-measure (Lin, 2004) of one pair by rouge-score: F1 of the clipped n-gram overlap.

    Args:
        hypothesis, reference: token lists.
        n: n-gram order (1 for ROUGE-1, 2 for ROUGE-2).
    """
    _check_tokens(hypothesis)
    _check_tokens(reference)
    return _rouge_scores((f"rouge{n}",), hypothesis, [reference])[f"rouge{n}"]


def rouge_l(hypothesis: Tokens, reference: Tokens) -> float:
    """ROUGE-L F-measure (Lin, 2004; beta = 1) of one pair by rouge-score: P = LCS / len(hypothesis),
    R = LCS / len(reference), LCS the longest common subsequence."""
    _check_tokens(hypothesis)
    _check_tokens(reference)
    return _rouge_scores(("rougeL",), hypothesis, [reference])["rougeL"]


def rouge(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]]) -> dict[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F-measures over segments; a segment with several references
    takes, per score, the best one (rouge-score's ``score_multi``).

    Args:
        hypotheses: one token list per segment, ``N`` of them.
        references: per segment a non-empty list of reference token lists.

    Returns:
        ``{"rouge1", "rouge2", "rougeL"}``, each in ``[0, 1]``.
    """
    _check_corpus(hypotheses, references)
    kinds = ("rouge1", "rouge2", "rougeL")
    totals = dict.fromkeys(kinds, 0.0)
    for hyp, refs in zip(hypotheses, references):
        for kind, value in _rouge_scores(kinds, hyp, refs).items():
            totals[kind] += value
    return {kind: total / len(hypotheses) for kind, total in totals.items()}


# The WordNet database directory when ``WNSEARCHDIR`` is not set: where Debian's ``wordnet-base`` installs it.
WORDNET_DIR = "/usr/share/wordnet"
# The database files METEOR's synonym matching reads (nltk's reader opens these when it is built).
WORDNET_FILES = ("data.noun", "index.noun", "noun.exc", "data.verb", "index.verb", "verb.exc", "data.adj",
                 "index.adj", "adj.exc", "data.adv", "index.adv", "adv.exc")
# WordNet 3.0's lexicographer files in number order (lexnames(5WN)). nltk's reader needs the ``lexnames``
# file listing them, which Debian's wordnet-base leaves out; it is the same table in every WordNet 3.0.
LEXNAMES = ("adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
            "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
            "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
            "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
            "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
            "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather "
            "adj.ppl").split()
_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


def wordnet_dir() -> Path:
    """The WordNet database directory: ``$WNSEARCHDIR`` when set, else :data:`WORDNET_DIR`."""
    return Path(os.environ.get("WNSEARCHDIR") or WORDNET_DIR)


def check_available(names: Sequence[str]) -> None:
    """``ValueError`` (one line, with the fix) when ``names`` asks for METEOR and nltk or WordNet is missing."""
    if "meteor" not in names:
        return
    if importlib.util.find_spec("nltk") is None:
        raise ValueError("text_metrics 'meteor' needs nltk: pip install -e '.[meteor]'")
    root = wordnet_dir()
    missing = [f for f in WORDNET_FILES if not (root / f).is_file()]
    if missing:
        raise ValueError(f"text_metrics 'meteor' needs WordNet 3.0 in {root} ({missing[0]} not found): "
                         "apt-get install wordnet-base, or set WNSEARCHDIR to a WordNet dict directory")


@functools.cache
def wordnet_reader(root: str):
    """nltk's ``WordNetCorpusReader`` on the WordNet 3.0 database in ``root`` (no multilingual data).

    ``root`` is added to ``nltk.data.path``, the directories nltk's path checks let a reader open. Two parts
    of nltk's reader assume nltk's own download and are replaced: when the directory has no ``lexnames``
    file (Debian's wordnet-base), the reader gets :data:`LEXNAMES`; and it does not map synsets to the
    downloaded ``wordnet`` corpus (``map_wn``, which only Open Multilingual WordNet lookups use).

    Raises:
        ValueError: as :func:`check_available`.
    """
    import warnings

    import nltk.data
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class Reader(WordNetCorpusReader):
        def open(self, file):
            if file == "lexnames" and not (Path(root) / file).is_file():
                return io.StringIO("".join(f"{i:02d}\t{n}\t{_CATEGORY[n.split('.')[0]]}\n"
                                           for i, n in enumerate(LEXNAMES)))
            return super().open(file)

        def map_wn(self, version="wordnet"):
            return None

    if root not in nltk.data.path:
        nltk.data.path.append(root)
    with warnings.catch_warnings():  # "multilingual functions are not available": none are used
        warnings.simplefilter("ignore", UserWarning)
        return Reader(root, None)


def meteor(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]], alpha: float = 0.9,
           beta: float = 3.0, gamma: float = 0.5) -> float:
    """Mean sentence METEOR (Banerjee & Lavie, 2005) over segments, by nltk's ``meteor_score``.

    Per segment, unigrams are aligned in three stages (exact, Porter stem, WordNet synonym; each word used
    once, the alignment with the fewest crossings), giving ``m`` matches of a hypothesis of ``h`` and a
    reference of ``r`` tokens: ``P = m / h``, ``R = m / r``, ``Fmean = P R / (alpha P + (1 - alpha) R)``, and
    with ``c`` chunks (runs of matches adjacent in both) the score is ``Fmean (1 - gamma (c / m)^beta)``; 0
    without a match. A segment with several references takes the best. Tokens are lowercased (nltk's
    default); the defaults are nltk's (and the hub's ``meteor``): ``alpha=0.9``, ``beta=3``, ``gamma=0.5``.
    nltk's synonym stage compares the Porter stems the stem stage leaves behind (measured with nltk 3.10), so
    a synonym counts when its stem is itself a WordNet word: ``car``/``auto`` match, ``big``/``large``
    (stem ``larg``) do not.

    Args:
        hypotheses: one token list per segment, ``N`` of them (may be empty: scores 0).
        references: per segment a non-empty list of reference token lists.

    Returns:
        METEOR in ``[0, 1]``: the mean of the ``N`` segment scores.

    Raises:
        ValueError: bad inputs, or nltk/WordNet missing (:func:`check_available`).
    """
    _check_corpus(hypotheses, references)
    check_available(["meteor"])
    from nltk.translate.meteor_score import meteor_score  # here: only QA tasks that ask for METEOR need it

    wordnet = wordnet_reader(str(wordnet_dir()))
    scores = [meteor_score([list(r) for r in refs], list(hyp), wordnet=wordnet, alpha=alpha, beta=beta,
                           gamma=gamma) for hyp, refs in zip(hypotheses, references)]
    return sum(scores) / len(scores)


# Name in ``tasks.<qa>.text_metrics`` -> ``(hypotheses, references) -> {metric key: value in [0, 1]}``.
METRICS: dict[str, Callable[[Sequence[Tokens], Sequence[Sequence[Tokens]]], dict[str, float]]] = {
    "bleu": lambda hyps, refs: {"bleu": bleu(hyps, refs)},
    "rouge": rouge,
    "meteor": lambda hyps, refs: {"meteor": meteor(hyps, refs)},
}


def compute(names: Sequence[str], hypotheses: Sequence[Tokens],
            references: Sequence[Sequence[Tokens]]) -> dict[str, float]:
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
