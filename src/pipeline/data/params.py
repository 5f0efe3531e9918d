"""The ``prepare`` stage's settings: which data sets, from where, and the tokenizer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pipeline.data.glue_tsv import LAYOUTS
from pipeline.data.io import COLUMNS, PAIR_COLUMNS

TOKENIZER = "tokenizer"
"""The name of the tokenizer's directory beside the data sets (``data/tokenizer``), so no data set may take it."""


@dataclass
class DataSource:
    """Where one data set comes from and how much of it to use."""

    type: Literal["text", "classification", "qa"]
    """Schema: ``text`` (MLM corpus), ``classification`` (sentence/label/idx), ``qa`` (SQuAD)."""
    source: str = "synthetic"
    """``synthetic`` (embedded generator), ``hub:<name>[/<config>]`` or a local directory of files as downloaded
    (GLUE task TSVs, SQuAD JSON, WikiText, or train/dev CSV, JSON(L), Parquet; see :mod:`pipeline.data.local`)."""
    train_size: int = 0
    """Rows generated (synthetic) or the first N good rows kept (others; after dropped rows); 0 keeps all."""
    validation_size: int = 0
    """Same for the validation split."""
    unanswerable_fraction: float = 0.0
    """Synthetic QA only: share of questions with no answer in their context (SQuAD v2 style), in [0, 1)."""
    glue: str = ""
    """Classification only: the GLUE task (cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, wnli) the source holds.
    Its original ``.tsv`` files are read with that task's columns (:mod:`pipeline.data.glue_tsv`) and labels are
    checked against its classes. Empty: the pipeline's own columns (``sentence``/``label``/``idx`` or a pair)."""
    label_names: list[str] = field(default_factory=list)
    """Classification only: label names in id order (``[negative, positive]``: ``positive`` becomes 1), for a
    source whose labels are names. Empty: labels must be numbers (``1`` and ``1.0`` both give 1)."""
    answer_mismatch: Literal["error", "fix", "drop"] = "error"
    """QA only: what to do with an answer whose ``answer_start`` does not point at its text (wrong, negative,
    past the context, null): stop (``error``), move it to the nearest occurrence of the text (``fix``) or drop
    the question (``drop``). Fixed and dropped rows are counted in the prepare metrics."""
    duplicate_ids: Literal["error", "rename"] = "error"
    """QA only: what to do with a question whose ``id`` an earlier question of the same split has (evaluation
    keys windows and answers by id, so two such questions would be pooled into one): stop naming the file,
    the id and both rows (``error``), or give the later one the id ``<id>_<n>`` (``n`` = 2, 3, ...: the first
    such id the split does not hold) and count it in the prepare metrics (``rename``)."""
    bad_rows: Literal["error", "drop"] = "error"
    """A row that cannot be used (a missing or empty column, a wrong field count, an impossible label): stop
    naming its file and line (``error``), or drop it and count it in the prepare metrics (``drop``)."""
    columns: dict[str, str] = field(default_factory=dict)
    """The pipeline's column -> the file's column, for files that name theirs otherwise
    (``{sentence: text_a}``, ``{label: polarity}``; with ``glue``, in place of the task's own file column).
    Common aliases (``text``/``text_a`` for ``sentence``, ``text_a``/``text_b`` for a pair, ``labels``) are
    recognised without it, with a one-line note (:mod:`pipeline.data.columns`). Empty: the schema's names."""
    evaluation_only: bool = False
    """The source has validation data only (a dev file alone): prepare writes no train split, and the stages
    that train on a data set (pretrain, finetune, teacher, prune, distill) refuse it; evaluate reads it."""
    validation_from_train: float = 0.0
    """A source without validation data: this share of the train rows, in (0, 1), drawn with ``prepare.seed``,
    becomes the validation split (rows with the same input stay on one side; QA questions of one context
    too). 0: the source's own validation split."""
    leakage: Literal["auto", "error", "drop", "warn"] = "auto"
    """Validation rows whose input also occurs in train (exact duplicates): ``error`` stops on any;
    ``drop`` removes them from train (the validation set stays whole); ``warn`` keeps them and prints a
    line; ``auto`` stops when every validation row is in train (the same file twice) and otherwise warns.
    Counted in the prepare metrics either way (:mod:`pipeline.data.splits`)."""

    def __post_init__(self):
        if self.train_size < 0 or self.validation_size < 0:
            raise ValueError("train_size/validation_size must be >= 0")
        if self.source == "synthetic" and (self.train_size == 0 or self.validation_size == 0):
            raise ValueError("synthetic data needs train_size > 0 and validation_size > 0")
        if not 0 <= self.unanswerable_fraction < 1:
            raise ValueError(f"unanswerable_fraction must be in [0, 1), got {self.unanswerable_fraction}")
        if self.unanswerable_fraction and (self.type != "qa" or self.source != "synthetic"):
            raise ValueError("unanswerable_fraction applies only to synthetic qa data")
        self._check_labels()
        if self.answer_mismatch != "error" and self.type != "qa":
            raise ValueError("answer_mismatch applies only to qa data")
        if self.duplicate_ids != "error" and self.type != "qa":
            raise ValueError("duplicate_ids applies only to qa data")
        self._check_columns()
        self._check_splits()

    def _check_columns(self) -> None:
        """``columns``: the schema's own column names mapped to distinct non-empty file columns."""
        if not self.columns:
            return
        if self.source == "synthetic":
            raise ValueError("columns applies only to data from the hub or files")
        known = set(COLUMNS[self.type]) | ({c for pair in PAIR_COLUMNS for c in pair}
                                            if self.type == "classification" else set())
        unknown = sorted(set(self.columns) - known)
        if unknown:
            raise ValueError(f"columns: {unknown[0]!r} is no {self.type} column (known: {', '.join(sorted(known))})")
        theirs = list(self.columns.values())
        if not all(isinstance(c, str) and c for c in theirs) or len(set(theirs)) != len(theirs):
            raise ValueError(f"columns must map to distinct non-empty file column names, got {dict(self.columns)}")

    def _check_splits(self) -> None:
        """``evaluation_only`` and ``validation_from_train``: files or the hub, one or the other."""
        if not (self.evaluation_only or self.validation_from_train):
            return
        if self.source == "synthetic":
            raise ValueError("evaluation_only and validation_from_train apply only to data from the hub or files")
        if self.evaluation_only and self.validation_from_train:
            raise ValueError("evaluation_only has no train split to take validation_from_train from; set one")
        if self.evaluation_only and self.train_size:
            raise ValueError("train_size: an evaluation_only data set has no train split")
        if not 0 <= self.validation_from_train < 1:
            raise ValueError(f"validation_from_train must be in (0, 1), got {self.validation_from_train}")

    def _check_labels(self) -> None:
        """``glue`` and ``label_names``: classification data from files or the hub, and a consistent label set."""
        if not (self.glue or self.label_names):
            return
        if self.type != "classification" or self.source == "synthetic":
            raise ValueError("glue and label_names apply only to classification data from the hub or files")
        if len(set(self.label_names)) != len(self.label_names) or not all(self.label_names):
            raise ValueError(f"label_names must be distinct non-empty names, got {self.label_names}")
        if not self.glue:
            return
        if self.glue not in LAYOUTS:
            raise ValueError(f"glue must be one of {', '.join(LAYOUTS)}, got {self.glue!r}")
        layout = LAYOUTS[self.glue]
        if self.label_names and (layout.label_names or layout.regression or len(self.label_names) != layout.num_labels):
            raise ValueError(
                f"label_names: GLUE task '{self.glue}' has its own labels "
                f"({list(layout.label_names) or layout.num_labels})"
            )


@dataclass
class PrepareParams:
    """The ``prepare`` stage: data sets and tokenizer."""

    seed: int = 0
    """Seed of the synthetic generators."""
    tokenizer: str = "synthetic"
    """``synthetic`` (deterministic WordPiece vocab of the generators' words), a hub name, a local dir, or
    ``pkg:<python package>/<dir>`` (a directory inside an installed package)."""
    datasets: dict[str, DataSource] = field(default_factory=dict)
    """Data sets by name: ``corpus`` (type ``text``) feeds pretraining, each other one is the data of the task
    of the same name (``tasks.<name>``); each is prepared by its own stage, ``prepare@<name>``."""

    def __post_init__(self):
        if not 0 <= self.seed < 2**32:  # the range of pipeline.config.args.check_seed (not imported: prepare's deps)
            raise ValueError(f"seed must be in [0, 2**32), got {self.seed}")
        if TOKENIZER in self.datasets:
            raise ValueError(f"no data set may be named '{TOKENIZER}' (data/{TOKENIZER} holds the tokenizer)")

    @classmethod
    def sections(cls, only: str | None) -> dict[str, type]:
        """The params sections one run of the prepare stage reads (``{key: type}``, in :meth:`select`'s order):
        everything for ``only=None``, ``prepare.tokenizer`` for :data:`TOKENIZER`, else the seed and the one
        data set ``prepare.datasets.<only>``."""
        if only is None:
            return {"prepare": cls}
        if only == TOKENIZER:
            return {"prepare.tokenizer": str}
        return {"prepare.seed": int, f"prepare.datasets.{only}": DataSource}

    @classmethod
    def select(cls, only: str | None, values: list) -> PrepareParams:
        """The settings one run of the prepare stage works on, from the sections it loaded.

        Args:
            only: None (everything: ``values`` is ``[PrepareParams]``), :data:`TOKENIZER` (``values`` is
                ``[prepare.tokenizer]``; no data set) or a data set's name (``values`` is ``[prepare.seed,
                prepare.datasets.<only>]``; the tokenizer is not built).
        """
        if only is None:
            return values[0]
        if only == TOKENIZER:
            return cls(tokenizer=values[0])
        seed, source = values
        return cls(seed=seed, datasets={only: source})
