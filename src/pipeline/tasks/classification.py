"""Sequence classification and regression: single sentences or sentence pairs, GLUE-style.

Rows hold the text column(s) of the task's GLUE schema (:mod:`pipeline.tasks.glue`; ``sentence`` by
default) and ``label`` (a class id, or a float for a one-output regression task such as STS-B). The
model is a sequence-classification head over the ``[CLS]`` representation; the loss is cross-entropy, or
MSE for regression.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.special
import torch

from pipeline.core.errors import PipelineError
from pipeline.data.features import ENCODE_BATCH, Batch, Features
from pipeline.data.io import read_split
from pipeline.tasks import TaskParams, glue, register
from pipeline.tasks.base import Scored, Task, all_logits


@dataclass
class ClassificationParams(TaskParams):
    """A classification (or one-output regression) task."""

    type: str = "classification"

    num_labels: int = 2
    """Classes; 1 makes the task a regression (one output trained with MSE)."""
    glue: str = ""
    """A GLUE task name (its columns, metrics, validation splits); empty: ``sentence``/``label`` rows scored by
    accuracy and F1 (or Pearson/Spearman when ``num_labels`` is 1)."""

    def __post_init__(self):
        super().__post_init__()
        if self.num_labels < 1:
            raise ValueError(f"num_labels must be >= 1, got {self.num_labels}")
        if self.glue:
            if self.glue not in glue.TASKS:
                raise ValueError(f"glue must be one of {sorted(glue.TASKS)} or empty, got {self.glue!r}")
            expected = glue.TASKS[self.glue].num_labels
            if self.num_labels != expected:
                raise ValueError(
                    f"glue '{self.glue}' has {expected} label(s) (1 = regression): set num_labels: {expected}, "
                    f"got {self.num_labels}"
                )


def encode(rows: list[dict], tokenizer, max_length: int, text_columns: tuple[str, ...] = ("sentence",),
           regression: bool = False, batch_size: int = ENCODE_BATCH) -> Features:
    """Tokenise single sentences or sentence pairs with their labels; no padding (batches pad dynamically).

    Args:
        rows: dicts with the ``text_columns`` and ``label``.
        max_length: longest encoding in tokens; pairs are truncated longest-first.
        text_columns: one column, or two encoded as a pair ``[CLS] a [SEP] b [SEP]`` with segment ids 0/1.
        regression: keep labels as floats (one-output models trained with MSE) instead of class ids.
        batch_size: rows per tokenizer call (each row is encoded on its own: the result does not depend on it).

    Returns:
        One feature per row (:class:`~pipeline.data.features.Features`): ``input_ids``, ``attention_mask``
        (and ``token_type_ids``) in the tokenizer's key order, then ``labels``.
    """
    def parts():
        for start in range(0, len(rows), batch_size):
            part = rows[start : start + batch_size]
            first = [r[text_columns[0]] for r in part]
            second = [r[text_columns[1]] for r in part] if len(text_columns) > 1 else None
            enc = tokenizer(first, second, truncation=True, max_length=max_length)
            labels = [float(r["label"]) if regression else int(r["label"]) for r in part]
            yield {**{k: enc[k] for k in enc.keys()}, "labels": labels}

    return Features.from_batches(parts(), {"labels": np.float64 if regression else np.int64})


@register("classification")
class ClassificationTask(Task):
    """GLUE-style classification or regression, scored with the GLUE task's official metrics."""

    params_type = ClassificationParams
    head = "classification"

    def __init__(self, params: ClassificationParams):
        super().__init__(params)
        self.glue = glue.spec(params.glue, params.num_labels)
        self.regression = self.glue.regression

    @property
    def num_labels(self) -> int:
        return self.params.num_labels

    def rows(self, data_dir: str | Path, split: str) -> list[dict]:
        """Rows checked against the GLUE task's columns and label range."""
        columns = self.glue.columns if self.params.glue else None
        split_rows = read_split(data_dir, split, "classification", columns)
        glue.check(self.glue, split_rows, str(Path(data_dir) / f"{split}.jsonl"))
        return split_rows

    def check_model(self, model: torch.nn.Module, key: str, where: str) -> None:
        """Besides the input length: the model's head has ``num_labels`` outputs (a head trained for another
        label count would be scored against the wrong classes)."""
        super().check_model(model, key, where)
        outputs = model.config.num_labels
        if outputs != self.num_labels:
            raise PipelineError(
                f"{key}.num_labels is {self.num_labels} but {where} has a classification head with {outputs} "
                f"output(s) (set {key}.num_labels: {outputs}, or fine-tune again)"
            )

    def check_data(self, data_dir: str | Path, split: str, tokenizer, key: str) -> None:
        """Class labels within ``num_labels`` (the error names the key as well as the row), then the GLUE
        checks of :meth:`rows`."""
        if not self.regression:
            columns = self.glue.columns if self.params.glue else None
            for n, row in enumerate(read_split(data_dir, split, "classification", columns), 1):
                label = row.get("label")
                if isinstance(label, int) and not isinstance(label, bool) and label >= self.num_labels:
                    raise PipelineError(
                        f"{key}.num_labels is {self.num_labels} but {Path(data_dir) / f'{split}.jsonl'} row {n} has "
                        f"label {label}: set {key}.num_labels to the data's class count"
                    )
        self.rows(data_dir, split)

    def train_features(self, rows: list[dict], tokenizer) -> Features:
        return encode(rows, tokenizer, self.params.max_length, self.glue.text_columns, self.regression)

    def hard_loss(self, outputs: tuple[torch.Tensor, ...], batch: Batch) -> torch.Tensor:
        """Cross-entropy against the class ids; MSE for regression (outputs ``(B, 1)``, float labels ``(B,)``)."""
        if self.regression:
            return torch.nn.functional.mse_loss(outputs[0].squeeze(-1), batch["labels"].to(outputs[0].dtype))
        return torch.nn.functional.cross_entropy(outputs[0], batch["labels"])

    @property
    def primary_metric(self) -> str:
        return self.glue.primary

    @property
    def eval_splits(self) -> dict[str, str]:
        return self.glue.eval_splits

    @property
    def glue_task(self) -> str:
        return self.params.glue

    def score(self, model, rows: list[dict], tokenizer, batch_size: int, device, predictions: bool = False,
              features: Features | None = None) -> Scored:
        """The GLUE task's metrics (fractions/correlations; by default ``accuracy`` and ``f1``), the logits
        ``(N, C)`` they were computed from (``C == 1`` for regression) and, with ``predictions``,
        ``{"predictions.json": per_example(rows, logits)}``. ``features``: those of ``rows``, if encoded already."""
        feats = features if features is not None else self.train_features(rows, tokenizer)
        (logits,) = all_logits(model, feats, tokenizer.pad_token_id, batch_size, device)
        files = {"predictions.json": self.per_example(rows, logits)} if predictions else None
        return Scored(glue.score(self.glue, logits, [r["label"] for r in rows]), logits, files)

    def per_example(self, rows: list[dict], logits: np.ndarray) -> list[dict]:
        """One record per row, in row order: ``row`` (0-based position in the split), ``idx`` (the row's own
        ``idx``, None when it has none), ``label`` (gold), ``prediction`` and, for classes, ``probabilities``
        (softmax of the ``C`` logits, float64; ``prediction`` is the argmax of the logits, as scored).
        Regression: ``prediction`` is the model's output."""
        out = []
        probs = None if self.regression else scipy.special.softmax(np.asarray(logits, dtype=np.float64), axis=1)
        for n, row in enumerate(rows):
            record = {"row": n, "idx": row.get("idx"), "label": row["label"]}
            if probs is None:
                record["prediction"] = float(logits[n, 0])
            else:
                record |= {"prediction": int(np.argmax(logits[n])), "probabilities": probs[n].tolist()}
            out.append(record)
        return out

    def class_labels(self, rows: list[dict]) -> np.ndarray | None:
        """Gold class ids ``(N,)``; None for regression (no classes to confuse)."""
        return None if self.regression else np.asarray([r["label"] for r in rows], dtype=np.int64)
