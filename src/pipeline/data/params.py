"""The ``prepare`` stage's settings: which data sets, from where, and the tokenizer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class DataSource:
    """Where one data set comes from and how much of it to use."""

    type: Literal["text", "classification", "qa"]
    """Schema: ``text`` (MLM corpus), ``classification`` (sentence/label/idx), ``qa`` (SQuAD)."""
    source: str = "synthetic"
    """``synthetic`` (embedded generator), ``hub:<name>[/<config>]`` or a local file/directory."""
    train_size: int = 0
    """Rows generated (synthetic) or the first N rows kept (others); 0 keeps all."""
    validation_size: int = 0
    """Same for the validation split."""
    unanswerable_fraction: float = 0.0
    """Synthetic QA only: share of questions with no answer in their context (SQuAD v2 style), in [0, 1)."""

    def __post_init__(self):
        if self.train_size < 0 or self.validation_size < 0:
            raise ValueError("train_size/validation_size must be >= 0")
        if self.source == "synthetic" and (self.train_size == 0 or self.validation_size == 0):
            raise ValueError("synthetic data needs train_size > 0 and validation_size > 0")
        if not 0 <= self.unanswerable_fraction < 1:
            raise ValueError(f"unanswerable_fraction must be in [0, 1), got {self.unanswerable_fraction}")
        if self.unanswerable_fraction and (self.type != "qa" or self.source != "synthetic"):
            raise ValueError("unanswerable_fraction applies only to synthetic qa data")


@dataclass
class PrepareParams:
    """The ``prepare`` stage: data sets and tokenizer."""

    seed: int = 0
    """Seed of the synthetic generators."""
    tokenizer: str = "synthetic"
    """``synthetic`` (deterministic WordPiece vocab of the generators' words), a hub name, a local dir, or
    ``pkg:<python package>/<dir>`` (a directory inside an installed package)."""
    datasets: dict[str, DataSource] = field(default_factory=dict)
    """Data sets by name; ``corpus`` feeds pretraining, the others are fine-tuning tasks."""
