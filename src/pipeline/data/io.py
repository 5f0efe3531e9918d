"""Reading and writing the prepared data sets (JSON lines, one file per split) with schema checks."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipeline.core.errors import PipelineError

SPLITS = ("train", "validation")
# Further evaluation splits kept when a source has them (MNLI's mismatched validation set).
EXTRA_SPLITS = ("validation_mismatched",)

# Columns each schema must have; the same names as GLUE/SST-2, SQuAD and plain-text corpora on the hub.
COLUMNS: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "classification": ("sentence", "label", "idx"),
    "qa": ("id", "title", "context", "question", "answers"),
}
# Sentence-pair text columns of the GLUE tasks (MRPC/STS-B/RTE/WNLI, QQP, MNLI, QNLI): a classification
# set with one of these and ``label`` is accepted in place of ``sentence``/``label``/``idx``.
PAIR_COLUMNS: tuple[tuple[str, str], ...] = (
    ("sentence1", "sentence2"), ("question1", "question2"), ("premise", "hypothesis"), ("question", "sentence"),
)


def check_columns(rows: list[dict], columns: tuple[str, ...] | list[str], where: str, what: str) -> None:
    """Raise a :class:`PipelineError` naming ``where`` if rows are empty or lack any of ``columns``.

    Args:
        where: the file or data set named in the message.
        what: the schema named in the message, e.g. ``a 'classification' data set``.
    """
    if not rows:
        raise PipelineError(f"{where}: split is empty")
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise PipelineError(f"{where}: missing column(s) {missing} for {what} (has {sorted(rows[0])})")


def check_rows(rows: list[dict], schema: str, where: str) -> None:
    """Raise a :class:`PipelineError` naming ``where`` if rows are empty or lack the schema's columns."""
    columns = COLUMNS[schema]
    if schema == "classification" and rows:
        # The layout (single sentence or one of the pairs) closest to the rows, so that a pair set missing
        # one column is told that column; ties go to the single-sentence layout. The task later checks
        # the exact columns of its GLUE task (pipeline.tasks.glue).
        layouts = [columns, *[(*pair, "label") for pair in PAIR_COLUMNS]]
        columns = min(layouts, key=lambda cols: sum(c not in rows[0] for c in cols))
    check_columns(rows, columns, where, f"a '{schema}' data set")
    if schema == "qa":
        # Empty lists are valid: an unanswerable (SQuAD v2) question. Every row is checked because a
        # malformed one would otherwise surface deep inside feature preparation.
        for n, row in enumerate(rows):
            answers = row.get("answers")
            if not isinstance(answers, dict) or not {"text", "answer_start"} <= set(answers):
                raise PipelineError(f"{where}: row {n}: 'answers' must be {{text: [...], answer_start: [...]}}")
            text, start = answers["text"], answers["answer_start"]
            if not isinstance(text, list) or not isinstance(start, list) or len(text) != len(start):
                raise PipelineError(
                    f"{where}: row {n} (id {row.get('id')!r}): 'answers' text and answer_start must be lists "
                    "of equal length (both empty for an unanswerable question)"
                )


def write_jsonl(path: str | os.PathLike, rows: list[dict]) -> None:
    """One JSON object per line, keys sorted, so equal rows give equal bytes."""
    with open(path, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n")


def read_split(
    data_dir: str | os.PathLike, split: str, schema: str, columns: tuple[str, ...] | None = None
) -> list[dict]:
    """Rows of ``<data_dir>/<split>.jsonl``, checked against ``schema``, or against exactly ``columns``
    when given (a GLUE task's columns, so the message names the column that task misses)."""
    path = Path(data_dir) / f"{split}.jsonl"
    if not path.is_file() and split == "train" and (Path(data_dir) / "validation.jsonl").is_file():
        raise PipelineError(f"{data_dir}: an evaluation-only data set (no train split) cannot be trained on; "
                            f"give it a train file, or train on another data set and evaluate on this one")
    if not path.is_file():
        raise PipelineError(f"{path}: not found (run the prepare stage first)")
    rows = []
    with open(path) as fh:
        for n, line in enumerate(fh, 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise PipelineError(f"{path}:{n}: not valid JSON") from None
    if columns is None:
        check_rows(rows, schema, str(path))
    else:
        check_columns(rows, columns, str(path), f"a '{schema}' data set with columns {list(columns)}")
    return rows
