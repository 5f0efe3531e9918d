"""Extractive question answering (SQuAD v1.1, and v2.0 with unanswerable questions).

Rows follow SQuAD's flat schema (``id``, ``title``, ``context``, ``question``,
``answers={"text": [...], "answer_start": [...]}``). Long contexts become several overlapping windows
(:mod:`pipeline.tasks.squad`); the model predicts start and end logits per token; scoring maps the best span
back to text and applies the official SQuAD metrics (:mod:`pipeline.metrics.squad`, the functions the local
``squad`` and ``squad_v2`` ``evaluate`` modules of :mod:`pipeline.metrics.modules` wrap).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.special
import torch

from pipeline.core.errors import PipelineError
from pipeline.data.features import ENCODE_BATCH, Batch, Feature, Features
from pipeline.data.io import read_split
from pipeline.metrics import squad as squad_metrics
from pipeline.metrics import text as text_metrics
from pipeline.tasks import TaskParams, register, squad
from pipeline.tasks.base import Scored, Task, all_logits


@dataclass
class QAParams(TaskParams):
    """An extractive QA task."""

    type: str = "qa"

    doc_stride: int = 64
    """Overlap in tokens between the windows of a long context."""
    max_answer_length: int = 30
    """Longest answer span in tokens considered by post-processing."""
    n_best_size: int = 20
    """Start and end candidates considered per window."""
    version_2_with_negative: bool = False
    """SQuAD v2 (some questions have no answer): predict "" when the null score wins, v2 metrics."""
    null_score_diff_threshold: float = 0.0
    """v2: predict "" when null score - best span score exceeds this (tune with ``best_f1_thresh``)."""
    text_metrics: list[Literal["bleu", "rouge", "meteor"]] = field(default_factory=list)
    """Extra answer-text metrics (the names of :data:`pipeline.metrics.text.METRICS`); ``meteor`` needs
    the ``meteor`` extra and WordNet (see :func:`pipeline.metrics.text.meteor`)."""

    def __post_init__(self):
        super().__post_init__()
        if not 0 < self.doc_stride < self.max_length:
            raise ValueError("doc_stride must be in (0, max_length)")
        if self.n_best_size < 1:
            raise ValueError(f"n_best_size must be >= 1, got {self.n_best_size}")
        if self.max_answer_length < 1:
            raise ValueError(f"max_answer_length must be >= 1, got {self.max_answer_length}")
        text_metrics.check_available(self.text_metrics)


def encode_features(features: dict[str, list], with_labels: bool) -> list[Feature]:
    """Rows of the column-wise dict returned by :mod:`pipeline.tasks.squad` feature preparation."""
    keys = [k for k in squad.MODEL_KEYS if k in features]
    if with_labels:
        keys += ["start_positions", "end_positions"]
    return [{k: features[k][i] for k in keys} for i in range(len(features["input_ids"]))]


def train_windows(rows: list[dict], tokenizer, max_length: int, doc_stride: int,
                  batch_size: int = ENCODE_BATCH) -> Features:
    """Labelled windows of :func:`pipeline.tasks.squad.prepare_train_features`, ``batch_size`` questions per
    tokenizer call (a question's windows depend on it alone, so the result does not depend on the batch size).

    Returns:
        One feature per window, in row order: the model inputs of :data:`pipeline.tasks.squad.MODEL_KEYS`
        that the tokenizer makes, then ``start_positions`` and ``end_positions``.
    """
    def parts():
        for start in range(0, len(rows), batch_size):
            feats = squad.prepare_train_features(rows[start : start + batch_size], tokenizer, max_length, doc_stride)
            yield {k: feats[k] for k in (*squad.MODEL_KEYS, "start_positions", "end_positions") if k in feats}

    return Features.from_batches(parts(), {"start_positions": np.int64, "end_positions": np.int64})


@register("qa")
class QATask(Task):
    """Extractive QA scored with SQuAD's official exact match and F1 (v2: the full official metric set)."""

    params_type = QAParams
    head = "qa"

    def rows(self, data_dir: str | Path, split: str) -> list[dict]:
        return read_split(data_dir, split, "qa")

    def check_data(self, data_dir: str | Path, split: str, tokenizer, key: str) -> None:
        """Distinct question ids (windows are pooled by id), unanswerable questions only with
        ``version_2_with_negative``, and every question short enough to
        leave a context window longer than ``doc_stride`` within ``max_length`` (else the tokenizer aborts)."""
        rows = self.rows(data_dir, split)
        where = Path(data_dir) / f"{split}.jsonl"
        lines: dict[str, int] = {}
        for line, row in enumerate(rows, 1):
            if lines.setdefault(row["id"], line) != line:
                raise PipelineError(f"{where}: line {line}: question id {row['id']!r} is already the id of line "
                                    f"{lines[row['id']]} (prepare refuses such data, or renames them with "
                                    "prepare.datasets.<name>.duplicate_ids: rename)")
        unanswerable = [r["id"] for r in rows if not r["answers"]["text"]]
        if unanswerable and not self.params.version_2_with_negative:
            more = f" (+{len(unanswerable) - 1} more)" if len(unanswerable) > 1 else ""
            raise PipelineError(
                f"{where}: question {unanswerable[0]!r}{more} has no answer: for SQuAD v2 data set "
                f"{key}.version_2_with_negative: true"
            )
        questions = [r["question"].lstrip() for r in rows]  # as feature preparation strips them
        try:
            squad._check_stride(questions, rows, tokenizer, self.params.max_length, self.params.doc_stride)
        except ValueError as err:
            raise PipelineError(f"{key}: {where}: {err} (raise {key}.max_length or lower {key}.doc_stride)") from None

    def train_features(self, rows: list[dict], tokenizer) -> Features:
        return train_windows(rows, tokenizer, self.params.max_length, self.params.doc_stride)

    def mask_padding(self, outputs: tuple[torch.Tensor, ...], batch: Batch) -> tuple[torch.Tensor, ...]:
        """Start and end logits ``(B, T)`` with padded positions (``attention_mask == 0``) at the dtype's lowest
        value, so a softmax over positions gives them zero probability. Without it a window's loss depends on
        how much padding its batch added (dynamic padding), so batch 8 and batch 4 accumulated twice gave
        gradients 5% apart; with it they agree to float rounding (``tests/test_train_items.py``)."""
        pad = batch["attention_mask"] == 0
        return tuple(o.masked_fill(pad, torch.finfo(o.dtype).min) for o in outputs)

    def hard_loss(self, outputs: tuple[torch.Tensor, ...], batch: Batch) -> torch.Tensor:
        """Mean of the start and end cross-entropies over the real (unpadded) positions (unanswerable windows
        point at the CLS token)."""
        ce = torch.nn.functional.cross_entropy
        start, end = self.mask_padding(outputs, batch)
        return (ce(start, batch["start_positions"]) + ce(end, batch["end_positions"])) / 2

    @property
    def primary_metric(self) -> str:
        return "f1"

    def eval_features(self, rows: list[dict], tokenizer, train_feats: Features | None = None) -> dict[str, list]:
        """The windows of :func:`pipeline.tasks.squad.prepare_eval_features` (with the offsets that map spans
        back to text; ``train_feats`` cannot serve, they have none)."""
        return squad.prepare_eval_features(rows, tokenizer, self.params.max_length, self.params.doc_stride)

    def score(self, model, rows: list[dict], tokenizer, batch_size: int, device, predictions: bool = False,
              features: dict[str, list] | None = None) -> Scored:
        """``{"exact_match", "f1"}`` (0-100) of the ``squad`` metric module, or with ``version_2_with_negative``
        the SQuAD v2 set of the ``squad_v2`` module (:func:`pipeline.metrics.squad.squad_v2`); plus
        ``bleu``/``rouge1``/``rouge2``/``rougeL``/``meteor`` (0-100) when ``text_metrics`` asks for them. No
        per-example class logits. With ``predictions``, the files of :func:`prediction_files`. ``features``:
        :meth:`eval_features` of ``rows``, if prepared already."""
        p = self.params
        refs = {r["id"]: list(r["answers"]["text"]) for r in rows}
        if not p.version_2_with_negative:
            unanswerable = [qid for qid, golds in refs.items() if not golds]
            if unanswerable:
                raise PipelineError(
                    f"question {unanswerable[0]!r} (+{len(unanswerable) - 1} more) has no answer: for SQuAD v2 "
                    "data set tasks.<task>.version_2_with_negative: true"
                )
        if features is None:
            features = self.eval_features(rows, tokenizer)
        start, end = all_logits(model, encode_features(features, with_labels=False), tokenizer.pad_token_id,
                                batch_size, device)
        spans = {"n_best_size": p.n_best_size, "max_answer_length": p.max_answer_length}
        diffs = None
        if p.version_2_with_negative:
            v2 = squad.postprocess_predictions_v2(rows, features, start, end,
                                                   null_score_diff_threshold=p.null_score_diff_threshold, **spans)
            # The best non-null answers, so that the threshold search sees what each question would get.
            scores = squad_metrics.squad_v2(v2.answers, refs, v2.score_diffs, p.null_score_diff_threshold)
            preds, diffs = v2.predictions, v2.score_diffs
        else:
            preds = squad.postprocess_predictions(rows, features, start, end, **spans)
            scores = squad_metrics.squad_v1(preds, refs)
        if p.text_metrics:
            scores.update(answer_text_metrics(p.text_metrics, preds, refs))
        files = None
        if predictions:
            nbest = squad.nbest_predictions(rows, features, start, end, with_null=diffs is not None, **spans)
            files = prediction_files(preds, nbest, diffs)
        return Scored(scores, None, files)


def prediction_files(preds: dict[str, str], nbest: dict[str, list[dict]],
                     score_diffs: dict[str, float] | None) -> dict[str, dict]:
    """The predictions in the files of the official SQuAD evaluation (``evaluate-v2.0.py``) and reference BERT
    scripts, as ``{file name: JSON content}``.

    - ``predictions.json``: ``{question id: answer text}`` (v2: ``""`` where "no answer" won at
      ``null_score_diff_threshold``); the script's ``data_file``/``pred_file`` pair scores it.
    - ``nbest_predictions.json``: ``{question id: [candidate, ...]}`` of :func:`pipeline.tasks.squad.nbest_predictions`.
    - v2 (``score_diffs`` given) ``na_prob.json``: ``{question id: P(no answer)}`` for the script's
      ``--na-prob-file``: the logistic sigmoid of ``null score - best span score``, i.e. the softmax
      probability of "no answer" against the best span; 1.0 where no valid span exists (diff ``+inf``). It is
      monotone in the score difference, so the script's best-threshold search ranks questions as
      ``best_f1_thresh`` does.
    """
    files: dict[str, dict] = {"predictions.json": preds, "nbest_predictions.json": nbest}
    if score_diffs is not None:
        files["na_prob.json"] = {qid: float(scipy.special.expit(np.float64(d))) for qid, d in score_diffs.items()}
    return files


def answer_text_metrics(names: list[str], preds: dict[str, str], refs: dict[str, list[str]]) -> dict[str, float]:
    """BLEU/ROUGE (percentages) of the predicted answers against the golds of the answerable questions.

    Texts are SQuAD-normalised and split on whitespace; unanswerable questions are left out (an empty
    reference has no n-grams to match), a "" prediction for an answerable one counts as an empty text.
    """
    hyps, golds = [], []
    for qid, answers in refs.items():
        tokenized = [toks for toks in (squad_metrics.normalize_answer(a).split() for a in answers) if toks]
        if tokenized:
            hyps.append(squad_metrics.normalize_answer(preds[qid]).split())
            golds.append(tokenized)
    if not hyps:
        return {}
    return text_metrics.compute(names, hyps, golds)
