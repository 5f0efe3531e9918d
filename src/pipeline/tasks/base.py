"""The task interface: what the pipeline needs to know about a kind of task, whatever model it trains.

A task turns prepared rows into model inputs, defines the model head and the training loss, and scores a
model on its validation split(s). :class:`pipeline.tasks.classification.ClassificationTask` (GLUE-style
single sentences and pairs, regression included) and :class:`pipeline.tasks.qa.QATask` (extractive QA,
SQuAD v1.1/v2.0) implement it, each registered in :data:`pipeline.tasks.TYPES`; :func:`pipeline.tasks.get` picks
one from the ``tasks.<name>`` params (:class:`pipeline.tasks.TaskParams`), whose ``type`` selects the params class
too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from pipeline.core.finite import check_finite
from pipeline.core.profile import model_time
from pipeline.data.features import Batch, Feature, Features, batches, collate
from pipeline.models.families import model_inputs
from pipeline.models.structure import check_input_length
from pipeline.tasks import TaskParams

# Keys of a batch that are targets, not model inputs.
LABEL_KEYS = ("labels", "start_positions", "end_positions")
class Scored(NamedTuple):
    """What :meth:`Task.score` measured on one split."""

    scores: dict
    """The task's metrics."""
    logits: np.ndarray | None = None
    """Per-example class logits ``(N, C)`` in row order, where the task has them (classification), else None."""
    predictions: dict[str, Any] | None = None
    """When asked for: the model's predictions as JSON-ready files, ``{file name: content}`` (e.g. SQuAD's
    ``predictions.json``); None otherwise."""


class Task(ABC):
    """One task type's data handling, loss and scoring, configured by its params."""

    type_name: str = ""
    params_type: type[TaskParams] = TaskParams
    head: str = ""
    """The model head the task trains (a :data:`pipeline.models.build.HEADS` name)."""
    regression: bool = False
    """True when the model predicts one number per example (logit KD then uses MSE)."""

    def __init__(self, params: TaskParams):
        self.params = params

    # --------------------------------------------------------------------------------------------- data
    @abstractmethod
    def rows(self, data_dir: str | Path, split: str) -> list[dict]:
        """The prepared rows of ``split`` (``<data_dir>/<split>.jsonl``), checked against the task's columns."""

    @abstractmethod
    def train_features(self, rows: list[dict], tokenizer) -> Features:
        """Labelled model inputs for training (QA: one feature per context window), tokenised in batches and
        held column by column (:class:`~pipeline.data.features.Features`)."""

    def first_features(self, rows: list[dict], tokenizer, count: int) -> Features:
        """``train_features(rows, tokenizer)[:count]``, encoding only the first ``count`` rows (every row gives at
        least one feature, QA one per window), for a stage that needs a few batches of a large split."""
        return self.train_features(rows[:count], tokenizer)[:count]

    def eval_features(self, rows: list[dict], tokenizer, train_feats: Features | None = None):
        """What :meth:`score` runs the model on for ``rows``; give it back as ``score(..., features=)`` so that
        a split scored every epoch is encoded once. Here (classification): the labelled training features,
        ``train_feats`` itself when given (the features of the same ``rows``)."""
        return train_feats if train_feats is not None else self.train_features(rows, tokenizer)

    @property
    def num_labels(self) -> int:
        """Outputs per example of the classification head (2 for QA's start/end logits)."""
        return 2

    # --------------------------------------------------------------------------------------- early checks
    def check(self, name: str, models: dict[str, torch.nn.Module], tokenizer, data_dir: str | Path | None,
              splits: tuple[str, ...] = ("train", "validation")) -> None:
        """Everything about this task that can be checked before any work: each model against the task's
        params (:meth:`check_model`) and the prepared ``splits`` against them (:meth:`check_data`).

        Args:
            name: the task's name in ``params.yaml`` (errors name ``tasks.<name>.<field>``).
            models: artifact path (or what built the model) -> model, in the stage's order.
            data_dir: the prepared task data; None checks the models only.

        Raises:
            PipelineError: the first problem, one line naming the key and the artifact or data file.
        """
        key = f"tasks.{name}"
        for where, model in models.items():
            self.check_model(model, key, str(where))
        for split in splits if data_dir is not None else ():
            self.check_data(data_dir, split, tokenizer, key)

    def check_model(self, model: torch.nn.Module, key: str, where: str) -> None:
        """The task's inputs fit the model: ``max_length`` within its position embeddings."""
        check_input_length(model, self.params.max_length, f"{key}.max_length", where)

    def check_data(self, data_dir: str | Path, split: str, tokenizer, key: str) -> None:
        """The rows of ``split`` suit the task's params (the columns are checked whenever rows are read)."""
        self.rows(data_dir, split)

    # -------------------------------------------------------------------------------------------- model
    @staticmethod
    def logits(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, ...]:
        """The task logits of a batch (targets stripped, and segment ids for a model without segment
        embeddings): ``((B, C),)`` or ``((B, T), (B, T))`` for QA."""
        out = model(**model_inputs(model, {k: v for k, v in batch.items() if k not in LABEL_KEYS}))
        if hasattr(out, "start_logits"):
            return out.start_logits, out.end_logits
        return (out.logits,)

    def mask_padding(self, outputs: tuple[torch.Tensor, ...], batch: Batch) -> tuple[torch.Tensor, ...]:
        """``outputs`` with the positions of padding tokens out of every softmax, for losses over positions
        (QA); per-sequence outputs (classification) are returned as they are."""
        return outputs

    @abstractmethod
    def hard_loss(self, outputs: tuple[torch.Tensor, ...], batch: Batch) -> torch.Tensor:
        """The supervised loss of :meth:`logits` outputs against the batch's targets (a scalar mean)."""

    def loss(self, model: torch.nn.Module, batch: Batch) -> torch.Tensor:
        """``hard_loss(logits(model, batch), batch)``: the training loss of plain fine-tuning."""
        return self.hard_loss(self.logits(model, batch), batch)

    # ------------------------------------------------------------------------------------------ scoring
    @property
    @abstractmethod
    def primary_metric(self) -> str:
        """The metric reports sort by."""

    @property
    def eval_splits(self) -> dict[str, str]:
        """Prepared split -> suffix of its metric names; splits other than ``validation`` are optional."""
        return {"validation": ""}

    @property
    def glue_task(self) -> str:
        """The GLUE task whose official metrics :meth:`score` reports (``sst2``, ``mnli``, ...); empty for none."""
        return ""

    @abstractmethod
    def score(self, model, rows: list[dict], tokenizer, batch_size: int, device, predictions: bool = False,
              features=None) -> Scored:
        """Task metrics of ``model`` on ``rows``, where the task has per-example class logits those logits
        ``(N, C)`` in row order, and with ``predictions`` the predictions as files (:class:`Scored`); one
        forward pass serves all three. ``features``: :meth:`eval_features` of ``rows``, computed once by a
        caller that scores the same rows repeatedly (default: encoded here)."""

    def class_labels(self, rows: list[dict]) -> np.ndarray | None:
        """Gold class ids ``(N,)`` of ``rows`` for per-class diagnostics (confusion matrix, ROC) of
        :meth:`score`'s logits; None when the task has no classes."""
        return None

    def evaluate(self, model, data_dir: str | Path, tokenizer, batch_size: int, device,
                 predictions: bool = False) -> Scored:
        """:meth:`score` on every prepared validation split in ``data_dir``.

        ``validation`` is reported under the plain metric names, further splits (MNLI's
        ``validation_mismatched``) under names with their suffix (``accuracy_mismatched``) when prepared.

        Returns:
            all splits' metrics, and the ``validation`` split's logits and (with ``predictions``) predictions.
        """
        rows = self.rows(data_dir, "validation")
        valid = Scored(*self.score(model, rows, tokenizer, batch_size, device, predictions))  # a plain tuple too
        out = dict(valid.scores)
        for split, suffix in self.eval_splits.items():
            if split != "validation" and (Path(data_dir) / f"{split}.jsonl").is_file():
                scores = self.score(model, self.rows(data_dir, split), tokenizer, batch_size, device).scores
                out.update({f"{k}{suffix}": v for k, v in scores.items()})
        return valid._replace(scores=out)


@torch.inference_mode()
def all_logits(model, feats: Sequence[Feature], pad_id: int, batch_size: int, device) -> list[np.ndarray]:
    """Logits over ``feats`` in order, one array per model output ``(N, ...)``; per-token outputs of batches
    of different lengths are padded with -1e4 (never the best span) to a common width.

    Raises:
        PipelineError: logits that are NaN or inf, naming the model and the likely cause
            (:func:`pipeline.core.finite.check_finite`), before any metric sees them.
    """
    model.eval()
    chunks: list[list[np.ndarray]] = []
    for batch in batches(feats, batch_size, lambda f: collate(f, pad_id)):
        with model_time(device):  # the rehearsal's profiler (pipeline.core.profile); off: a no-op
            outs = Task.logits(model, {k: v.to(device) for k, v in batch.items()})
        check_finite(outs, model)
        chunks.append([o.float().cpu().numpy() for o in outs])
    result = []
    for i in range(len(chunks[0])):
        parts = [c[i] for c in chunks]
        if parts[0].ndim == 2 and len({p.shape[1] for p in parts}) > 1:
            width = max(p.shape[1] for p in parts)
            parts = [np.pad(p, ((0, 0), (0, width - p.shape[1])), constant_values=-1e4) for p in parts]
        result.append(np.concatenate(parts))
    return result
