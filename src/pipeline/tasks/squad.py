"""Extractive question answering: SQuAD-style features (sliding windows) and span post-processing.

A long context is split into several overlapping *features* (windows of at most ``max_length`` tokens
that share ``doc_stride`` tokens with their neighbour), each holding the full question. Training labels
each feature with the token span of the answer (or the CLS token when the answer is not wholly inside);
evaluation keeps, per feature, the id of its example and the character offsets of its context tokens,
so that the best-scoring token span over all of an example's features can be mapped back to text.
SQuAD v2 (unanswerable questions) also scores "no answer" at the CLS token and predicts ``""`` when
that null score beats the best span by more than a threshold.

Needs a *fast* (Rust-backed) tokenizer: offsets and ``sequence_ids`` come from it. Any tokenizer family
works: special tokens and their positions come from the tokenizer (RoBERTa's ``<s> q </s></s> c </s>``
as well as BERT's ``[CLS] q [SEP] c [SEP]``), segment ids are kept only when it makes them, and byte-level
BPE tokens (RoBERTa, ModernBERT), whose offsets may include the space before a word, are handled: an answer
span is found by overlap, not by exact offsets, and predicted text is cut without surrounding whitespace.
Contexts and questions are plain strings, never pre-split words, so no ``add_prefix_space`` is needed.

SQuAD's other steps live in the layers that own them, each module named ``squad``: reading the official JSON in
:mod:`pipeline.data.squad`, scoring the answers in :mod:`pipeline.metrics.squad`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np

from pipeline.core.errors import PipelineError

# The keys a model consumes; anything else the tokenizer returns (offsets, overflow mapping) is ours.
MODEL_KEYS = ("input_ids", "attention_mask", "token_type_ids")

Offset = tuple[int, int]


# ----------------------------------------------------------------------------------------------------
# Tokenisation shared by training and evaluation
# ----------------------------------------------------------------------------------------------------


def _question_first(tokenizer) -> bool:
    """Whether the question goes first in the pair.

    With right padding (BERT and most encoders) the question comes first and the context is the
    truncated, windowed second sequence. With left padding the order flips so that the padding never
    lands between question and context.
    """
    return getattr(tokenizer, "padding_side", "right") == "right"


def _check_stride(questions: list[str], examples: list[dict], tokenizer, max_length: int, doc_stride: int) -> None:
    """Raise ``ValueError`` if some question leaves no room for a window longer than ``doc_stride``.

    The Rust tokenizer would otherwise abort with a ``PanicException`` (a ``BaseException``, so it slips
    past ``except Exception``) and no hint of which example caused it.
    """
    if doc_stride < 0 or max_length <= 0:
        raise ValueError(f"need max_length > 0 and doc_stride >= 0, got {max_length} and {doc_stride}")
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    lengths = [len(ids) for ids in tokenizer(questions, add_special_tokens=False)["input_ids"]]
    for example, n in zip(examples, lengths):
        room = max_length - specials - n  # context tokens that fit next to this question
        if room <= doc_stride:
            raise ValueError(
                f"example {example['id']!r}: question is {n} tokens, leaving {room} context tokens per "
                f"window with max_length={max_length}; doc_stride={doc_stride} must be smaller than that"
            )


def _tokenize(examples: Sequence[dict], tokenizer, max_length: int, doc_stride: int):
    """Tokenise question/context pairs into overlapping windows of at most ``max_length`` tokens.

    Returns:
        ``(encoding, context_index)``: the tokenizer's ``BatchEncoding`` (with ``offset_mapping`` and
        ``overflow_to_sample_mapping``), and which sequence id (0 or 1) marks context tokens.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError("QA features need a fast tokenizer (offset mappings and sequence ids)")
    examples = list(examples)
    # Leading whitespace in a question is noise that some tokenizers (byte-level BPE) turn into tokens,
    # eating into the context budget.
    questions = [ex["question"].lstrip() for ex in examples]
    contexts = [ex["context"] for ex in examples]
    _check_stride(questions, examples, tokenizer, max_length, doc_stride)
    question_first = _question_first(tokenizer)
    first, second = (questions, contexts) if question_first else (contexts, questions)
    enc = tokenizer(
        first,
        second,
        truncation="only_second" if question_first else "only_first",  # never cut the question
        max_length=max_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        # Right-padding tokenizers: no padding here, batches are padded to their longest feature when
        # collated (less compute). Left-padding ones keep their padding in front of the context.
        padding=False if question_first else "max_length",
    )
    return enc, (1 if question_first else 0)


def _model_inputs(enc) -> dict[str, list]:
    """The model-input columns present in ``enc`` (``token_type_ids`` only when the tokenizer makes them)."""
    return {k: list(enc[k]) for k in MODEL_KEYS if k in enc}


def _cls_position(ids: list[int], tokenizer) -> int:
    """Where the CLS token sits in one feature (0 for BERT; after the padding when padding on the left).

    Training points unanswerable features at it and SQuAD v2 post-processing reads the null score there.
    """
    return ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in ids else 0


def _context_tokens(sequence_ids: list[int | None], context_index: int) -> list[int]:
    """Token positions of the context in one feature, in order."""
    return [k for k, s in enumerate(sequence_ids) if s == context_index]


# ----------------------------------------------------------------------------------------------------
# Training features
# ----------------------------------------------------------------------------------------------------


def _answer_token_span(
    offsets: Sequence[Offset], context: list[int], start_char: int, end_char: int
) -> tuple[int, int] | None:
    """Token indices ``(start, end)`` (inclusive) covering characters ``[start_char, end_char)``.

    Args:
        offsets: per-token ``(char_start, char_end)`` in the context, length ``seq_len``.
        context: positions of this feature's context tokens (see :func:`_context_tokens`).
        start_char, end_char: the answer's character span in the context, end exclusive.

    Returns:
        ``None`` when the answer is empty or not wholly inside this feature's window.
    """
    if not context or end_char <= start_char:
        return None
    if offsets[context[0]][0] > start_char or offsets[context[-1]][1] < end_char:
        return None
    # First token ending after the answer starts / last token starting before it ends. Unlike an
    # exact offset match this also works when answer_start points at whitespace or mid-word.
    start = next(k for k in context if offsets[k][1] > start_char)
    end = next(k for k in reversed(context) if offsets[k][0] < end_char)
    return start, end


def prepare_train_features(
    examples: Sequence[dict], tokenizer, max_length: int = 384, doc_stride: int = 128
) -> dict[str, list]:
    """Labelled sliding-window features for extractive QA training.

    Args:
        examples: SQuAD-schema rows: ``id, title, context, question,
            answers={"text": [...], "answer_start": [...]}``; only the first answer is used.
        tokenizer: a fast tokenizer; question first when it pads on the right (BERT).
        max_length: at most this many tokens per feature (default 384); features of right-padding
            tokenizers are not padded (collation pads each batch), left-padding ones are padded to it.
        doc_stride: tokens shared by consecutive windows of one context (default 128); must be smaller
            than the context room left by the longest question, else ``ValueError``.

    Returns:
        Column-wise lists, one entry per feature (``F >= len(examples)``):
        ``input_ids``, ``attention_mask`` and, if the tokenizer makes them, ``token_type_ids``
        (each ``F x max_length`` ints); ``start_positions`` and ``end_positions`` (``F`` ints): the
        answer's first and last token, or the CLS token's index (0 for BERT) for both when the answer is
        not wholly inside that feature's window or the example has no answer.
    """
    enc, context_index = _tokenize(examples, tokenizer, max_length, doc_stride)
    examples = list(examples)
    starts, ends = [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        example = examples[enc["overflow_to_sample_mapping"][i]]
        ids = enc["input_ids"][i]
        cls = _cls_position(ids, tokenizer)
        answers = example["answers"]
        span = None
        if len(answers["text"]) > 0:
            start_char = int(answers["answer_start"][0])
            end_char = start_char + len(answers["text"][0])
            context = _context_tokens(enc.sequence_ids(i), context_index)
            span = _answer_token_span(offsets, context, start_char, end_char)
        s, e = span if span is not None else (cls, cls)
        starts.append(s)
        ends.append(e)
    features = _model_inputs(enc)
    features["start_positions"] = starts
    features["end_positions"] = ends
    return features


# ----------------------------------------------------------------------------------------------------
# Evaluation features and post-processing
# ----------------------------------------------------------------------------------------------------


def prepare_eval_features(
    examples: Sequence[dict], tokenizer, max_length: int = 384, doc_stride: int = 128
) -> dict[str, list]:
    """Sliding-window features for QA evaluation, tokenised exactly as :func:`prepare_train_features`.

    Args:
        examples, tokenizer, max_length, doc_stride: as for :func:`prepare_train_features`
            (``answers`` is not needed).

    Returns:
        Column-wise lists, one entry per feature: the model inputs (``input_ids``, ``attention_mask``,
        ``token_type_ids`` if made) plus ``example_id`` (the ``id`` of the feature's example) and
        ``offset_mapping`` (``max_length`` entries: ``(char_start, char_end)`` into the context for
        context tokens, ``None`` for question, special and padding tokens) and ``cls_index`` (the
        CLS token's position, where SQuAD v2 post-processing reads the null score).
    """
    enc, context_index = _tokenize(examples, tokenizer, max_length, doc_stride)
    examples = list(examples)
    example_ids, offset_mapping, cls_index = [], [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        example_ids.append(examples[enc["overflow_to_sample_mapping"][i]]["id"])
        cls_index.append(_cls_position(enc["input_ids"][i], tokenizer))
        seq = enc.sequence_ids(i)
        # None marks "not answerable from here", which post-processing relies on to skip the question.
        offset_mapping.append([tuple(o) if seq[k] == context_index else None for k, o in enumerate(offsets)])
    features = _model_inputs(enc)
    features["example_id"] = example_ids
    features["offset_mapping"] = offset_mapping
    features["cls_index"] = cls_index
    return features


class Span(NamedTuple):
    """A candidate answer: its score (start logit + end logit), character span in the context and the two logits."""

    score: float
    start_char: int
    end_char: int
    start_logit: float
    end_logit: float


def _top_indices(logits: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values, largest first (ties: lower index first)."""
    return np.argsort(-logits, kind="stable")[:k]


def _candidate_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    offsets: Sequence[Offset | None],
    n_best_size: int,
    max_answer_length: int,
) -> Iterator[Span]:
    """Valid spans among the ``n_best_size`` best start and end tokens of one feature.

    Args:
        start_logits, end_logits: shape ``(seq_len,)``; may be longer than ``offsets`` (callers pad
            logits of a batch to a common width), the extra positions are ignored.
        offsets: the feature's ``offset_mapping`` (``None`` outside the context).
        n_best_size: how many start and how many end positions to pair up.
        max_answer_length: the longest span allowed, in tokens.

    Yields:
        Spans with both ends in the context, end not before start and at most ``max_answer_length`` tokens.
    """
    n = min(len(offsets), len(start_logits), len(end_logits))
    start_logits, end_logits = start_logits[:n], end_logits[:n]
    ends = _top_indices(end_logits, n_best_size)
    for s in _top_indices(start_logits, n_best_size):
        if offsets[s] is None:
            continue
        for e in ends:
            if offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                continue
            yield Span(float(start_logits[s] + end_logits[e]), int(offsets[s][0]), int(offsets[e][1]),
                       float(start_logits[s]), float(end_logits[e]))


def _best_span(spans: Iterator[Span]) -> Span | None:
    """The highest-scoring span (the first of equals), or ``None`` if there is none.

    SQuAD v2 compares the winner's score with the example's null score: see
    :func:`postprocess_predictions_v2`.
    """
    best = None
    for span in spans:
        if best is None or span.score > best.score:
            best = span
    return best


def span_text(context: str, span: Span) -> str:
    """The context text under ``span`` without surrounding whitespace.

    A byte-level BPE token for `` word`` (``Ġword``) has offsets that start at the space unless its tokenizer
    trims them (RoBERTa's post-processor does, a plain ``TemplateProcessing`` one does not); WordPiece offsets
    never include whitespace, so for them this is the plain slice.
    """
    return context[span.start_char : span.end_char].strip()


def _checked_logits(
    features: dict[str, list], start_logits, end_logits, n_best_size: int, max_answer_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Start/end logits as arrays of shape ``(num_features, seq_len)``; ``ValueError`` on bad shapes/sizes."""
    start_logits, end_logits = np.asarray(start_logits), np.asarray(end_logits)
    n_features = len(features["example_id"])
    if start_logits.ndim != 2 or start_logits.shape != end_logits.shape or start_logits.shape[0] != n_features:
        raise ValueError(
            f"expected start/end logits of shape ({n_features}, seq_len), "
            f"got {start_logits.shape} and {end_logits.shape}"
        )
    if n_best_size < 1 or max_answer_length < 1:
        raise ValueError(f"n_best_size and max_answer_length must be >= 1, got {n_best_size}, {max_answer_length}")
    return start_logits, end_logits


def _example_best_span(
    indices: list[int], features: dict[str, list], start_logits: np.ndarray, end_logits: np.ndarray,
    n_best_size: int, max_answer_length: int,
) -> Span | None:
    """The best valid span over the features ``indices`` of one example (``None`` if there is none)."""
    spans = (
        span
        for i in indices
        for span in _candidate_spans(
            start_logits[i], end_logits[i], features["offset_mapping"][i], n_best_size, max_answer_length
        )
    )
    return _best_span(spans)


def _features_by_example(examples: Sequence[dict], example_ids: Sequence) -> dict[object, list[int]]:
    """``{example id: [feature index, ...]}`` in feature order.

    Raises:
        PipelineError: two examples share an id: their windows would be pooled under it (an answer cut from
            one context with the other's offsets, one question missing from the scores). Prepare refuses or
            renames such ids (``prepare.datasets.<name>.duplicate_ids``); this is the second line of defence.
    """
    seen: dict[object, int] = {}
    for k, example in enumerate(examples):
        if example["id"] in seen:
            raise PipelineError(f"question id {example['id']!r} is shared by examples {seen[example['id']] + 1} "
                                f"and {k + 1}: their windows would be scored as one question (prepare "
                                "refuses such data; prepare.datasets.<name>.duplicate_ids: rename renames them)")
        seen[example["id"]] = k
    groups: dict[object, list[int]] = {}
    for i, example_id in enumerate(example_ids):
        groups.setdefault(example_id, []).append(i)
    return groups


def postprocess_predictions(
    examples: Sequence[dict],
    features: dict[str, list],
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    n_best_size: int = 20,
    max_answer_length: int = 30,
) -> dict[str, str]:
    """Answer text per example from start/end logits over its features (SQuAD v1: always answers).

    Args:
        examples: the rows given to :func:`prepare_eval_features` (need ``id`` and ``context``).
        features: its result (needs ``example_id`` and ``offset_mapping``).
        start_logits, end_logits: arrays of shape ``(num_features, seq_len)``, rows in feature order.
        n_best_size: start and end candidates considered per feature (default 20).
        max_answer_length: longest answer in tokens (default 30).

    Returns:
        ``{example id: answer}``: the context slice under the best-scoring valid span over all of the
        example's features, or ``""`` when no valid span exists (score = start logit + end logit).
    """
    start_logits, end_logits = _checked_logits(features, start_logits, end_logits, n_best_size, max_answer_length)
    by_example = _features_by_example(examples, features["example_id"])
    predictions: dict[str, str] = {}
    for example in examples:
        best = _example_best_span(
            by_example.get(example["id"], []), features, start_logits, end_logits, n_best_size, max_answer_length
        )
        predictions[example["id"]] = "" if best is None else span_text(example["context"], best)
    return predictions


class NullPredictions(NamedTuple):
    """SQuAD v2 post-processing output, all keyed by example id."""

    predictions: dict[str, str]
    """The answer at the threshold: ``""`` when the example's score diff exceeds it, else ``answers``."""
    answers: dict[str, str]
    """The best non-null answer (``""`` only when no valid span exists): what is predicted if answered."""
    score_diffs: dict[str, float]
    """``null score - best non-null score``; ``+inf`` when no valid span exists."""


def postprocess_predictions_v2(
    examples: Sequence[dict],
    features: dict[str, list],
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    null_score_diff_threshold: float = 0.0,
) -> NullPredictions:
    """SQuAD v2 post-processing: the best span as in :func:`postprocess_predictions`, or "no answer".

    An example's null score is the CLS token's start logit + end logit (the span training points
    unanswerable features at), taken as the *minimum* over the example's features: a window that
    holds the answer should give a low null score, and one such window is enough to answer, as in the
    reference BERT SQuAD v2 code. The example is predicted unanswerable (``""``) when
    ``null_score - best_non_null_score > null_score_diff_threshold``. A threshold of ``+inf`` thus
    always answers (every example that has a valid span gets its text), ``-inf`` never does.

    Args:
        examples, features, start_logits, end_logits, n_best_size, max_answer_length: as for
            :func:`postprocess_predictions`; ``features`` may carry ``cls_index`` (per feature, from
            :func:`prepare_eval_features`), else the CLS token is taken to be at index 0.
        null_score_diff_threshold: how far the null score must exceed the best span's score before
            "no answer" is predicted (default 0.0); raise it to answer more often. Tune it on
            validation data with the ``best_f1_thresh`` of :func:`pipeline.metrics.squad.squad_v2`.

    Returns:
        :class:`NullPredictions`: the thresholded predictions, the best non-null answers and the score
        diffs; the latter two are what :func:`pipeline.metrics.squad.squad_v2` needs for its threshold search.
    """
    start_logits, end_logits = _checked_logits(features, start_logits, end_logits, n_best_size, max_answer_length)
    cls_index = features.get("cls_index") or [0] * len(features["example_id"])
    by_example = _features_by_example(examples, features["example_id"])
    out = NullPredictions({}, {}, {})
    for example in examples:
        qid, indices = example["id"], by_example.get(example["id"], [])
        if not indices:
            raise ValueError(f"example {qid!r} has no features")
        null_score = min(float(start_logits[i, cls_index[i]] + end_logits[i, cls_index[i]]) for i in indices)
        best = _example_best_span(indices, features, start_logits, end_logits, n_best_size, max_answer_length)
        answer = "" if best is None else span_text(example["context"], best)
        diff = np.inf if best is None else null_score - best.score
        out.answers[qid], out.score_diffs[qid] = answer, float(diff)
        out.predictions[qid] = "" if diff > null_score_diff_threshold else answer
    return out


def _null_candidate(indices: list[int], features: dict[str, list], start_logits: np.ndarray,
                    end_logits: np.ndarray) -> dict:
    """The "no answer" candidate of one example: the CLS logits of its feature with the lowest null score."""
    cls_index = features.get("cls_index") or [0] * len(features["example_id"])
    i = min(indices, key=lambda k: float(start_logits[k, cls_index[k]] + end_logits[k, cls_index[k]]))
    start, end = float(start_logits[i, cls_index[i]]), float(end_logits[i, cls_index[i]])
    return {"text": "", "score": start + end, "start_logit": start, "end_logit": end, "start_char": None,
            "end_char": None}


def nbest_predictions(
    examples: Sequence[dict],
    features: dict[str, list],
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    with_null: bool = False,
) -> dict[str, list[dict]]:
    """The best answer candidates of each example, best first (the n-best file of the reference BERT and
    Hugging Face SQuAD scripts).

    The candidates are the valid spans of :func:`postprocess_predictions` over all of the example's
    features, sorted by score (start logit + end logit; equal scores keep the order in which they were
    found, so the first candidate is the answer :func:`postprocess_predictions` picks), the ``n_best_size``
    best kept. With ``with_null`` (SQuAD v2) the "no answer" candidate is added and sorted with them: text
    ``""``, the CLS start/end logits of the feature with the lowest null score (the null score of
    :func:`postprocess_predictions_v2`) and no character offsets.

    Args:
        examples, features, start_logits, end_logits, n_best_size, max_answer_length: as for
            :func:`postprocess_predictions`.
        with_null: add the "no answer" candidate.

    Returns:
        ``{example id: [candidate, ...]}``, at most ``n_best_size`` (+1 with ``with_null``) candidates, each
        ``{"text", "score", "start_logit", "end_logit", "start_char", "end_char", "probability"}``: offsets
        into the context (end exclusive; ``None`` for "no answer") and the softmax of the scores over the
        example's listed candidates. An example without any valid span gets ``[]`` (v1).
    """
    start_logits, end_logits = _checked_logits(features, start_logits, end_logits, n_best_size, max_answer_length)
    by_example = _features_by_example(examples, features["example_id"])
    out: dict[str, list[dict]] = {}
    for example in examples:
        indices = by_example.get(example["id"], [])
        spans = [span for i in indices for span in _candidate_spans(
            start_logits[i], end_logits[i], features["offset_mapping"][i], n_best_size, max_answer_length)]
        spans.sort(key=lambda span: -span.score)
        found = [{"text": example["context"][s.start_char : s.end_char], "score": s.score, "start_logit": s.start_logit,
                  "end_logit": s.end_logit, "start_char": s.start_char, "end_char": s.end_char}
                 for s in spans[:n_best_size]]
        if with_null and indices:
            found = sorted([*found, _null_candidate(indices, features, start_logits, end_logits)],
                           key=lambda c: -c["score"])
        if found:
            scores = np.array([c["score"] for c in found])
            weights = np.exp(scores - scores.max())
            for candidate, p in zip(found, weights / weights.sum()):
                candidate["probability"] = float(p)
        out[example["id"]] = found
    return out
