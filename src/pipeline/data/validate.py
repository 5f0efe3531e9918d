"""Row-by-row checks of a data set at prepare, so a bad row stops the pipeline there, naming its file and line.

Every row (up to the split's size limit) is checked against its schema and rewritten to exactly the
schema's columns:

* ``text``: a string ``text``. Blank lines and WikiText section headings (`` = Title = ``,
  `` = = Section = = ``) are dropped and counted: they are not paragraphs.
* ``classification``: non-empty strings in the text columns (``sentence``, or a GLUE task's pair), a label
  and an ``idx`` (the 0-based row number when the source has none). Labels may arrive as numbers, as
  numeric strings (``"1"``, ``"1.0"``: CSV/TSV) or as names listed in ``label_names`` (or in the GLUE task's
  layout); whole numbers become ints, and when the number of classes is known they must lie in
  ``[0, num_labels)``. Without a known label set a fractional number is kept as a float (a regression
  target); STS-B's scores are floats.
* ``qa``: string ``id``/``title``, non-empty ``context``/``question``, and ``answers`` as equal-length lists
  ``text``/``answer_start`` whose every answer satisfies ``context[start:start + len(text)] == text``.

A row that fails is an error naming the file, the row's line and the problem, or, with
``bad_rows: drop``, dropped and counted. An answer whose ``answer_start`` does not point at its text follows
``answer_mismatch``: ``error``; ``fix`` (moved to the occurrence of the text nearest to the given offset, the
first one if the offset is not a number; counted; a text that does not occur is a bad row); or ``drop``
(the row is dropped and counted). A QA question whose ``id`` an earlier question of the split has follows
``duplicate_ids``: ``error`` (naming the file, the id and both rows) or ``rename`` (counted).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from pipeline.core.errors import PipelineError
from pipeline.data.glue_tsv import LAYOUTS
from pipeline.data.io import PAIR_COLUMNS
from pipeline.data.params import DataSource
from pipeline.data.readers import Table

# WikiText headings: "= Title =", "= = Section = =", "= = = Subsection = = =" (after stripping).
_HEADING = re.compile(r"(?:= )+[^=].*?(?: =)+")


class RowError(Exception):
    """A row that cannot be used; the message says why (the caller adds the file and line)."""


class AnswerMismatch(RowError):
    """An answer whose ``answer_start`` does not point at its text in the context."""


class Dropped(Exception):
    """A row that is not data (a blank line, a heading); the message is its counter's name."""


@dataclass(frozen=True)
class LabelSpec:
    """What labels a classification data set may have."""

    names: tuple[str, ...] = ()
    """Label names in id order; a label equal to one of them becomes its index."""
    num_labels: int = 0
    """Number of classes when known (a GLUE task, ``label_names``); 0: unknown."""
    regression: bool = False
    """Labels are float scores (STS-B)."""

    @classmethod
    def of(cls, src: DataSource) -> LabelSpec:
        if src.glue:
            layout = LAYOUTS[src.glue]
            names = tuple(src.label_names) or layout.label_names
            return cls(names, layout.num_labels, layout.regression)
        return cls(tuple(src.label_names), len(src.label_names))


def _number(value, what: str) -> int | float:
    """An int or finite float from a JSON number or a numeric string, else a :class:`RowError` naming ``what``."""
    number = value
    if isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            try:
                number = float(value.strip())
            except ValueError:
                raise RowError(f"{what} {value!r} is not a number") from None
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise RowError(f"{what} {value!r} is not a number")
    if not math.isfinite(number):
        raise RowError(f"{what} {value!r} is not finite")
    return number


def label_value(value, spec: LabelSpec) -> int | float:
    """The label id (or score) of a raw label.

    Raises:
        RowError: a missing label, an unknown name, a non-number, a fraction or an id out of range where the
            label set is known.
    """
    if value is None or value == "":
        raise RowError("no label")
    if isinstance(value, str) and value.strip() in spec.names:
        return spec.names.index(value.strip())
    try:
        number = _number(value, "label")
    except RowError as err:
        hint = f"one of {list(spec.names)}" if spec.names else "a number (label_names maps names to ids)"
        raise RowError(f"{err}; expected {hint}") from None
    if spec.regression:
        return float(number)
    if number == int(number):
        number = int(number)
    elif spec.num_labels:
        raise RowError(f"label {value!r} is not a class id")
    if spec.num_labels and not 0 <= number < spec.num_labels:
        raise RowError(f"label {value!r} is not in [0, {spec.num_labels})")
    return number


def _text(row: dict, column: str, empty_ok: bool = False) -> str:
    """The string in ``column``, or a :class:`RowError` if it is missing, not a string or blank."""
    value = row.get(column)
    if value is None:
        raise RowError(f"missing '{column}'")
    if not isinstance(value, str):
        raise RowError(f"'{column}' must be a string, got {type(value).__name__} {value!r}")
    if not empty_ok and not value.strip():
        raise RowError(f"empty '{column}'")
    return value


def text_row(row: dict) -> dict:
    """``{"text"}`` of a corpus row; :class:`Dropped` for a blank line or a WikiText heading."""
    text = _text(row, "text", empty_ok=True)
    if not text.strip():
        raise Dropped("blank_lines_dropped")
    if _HEADING.fullmatch(text.strip()):
        raise Dropped("headings_dropped")
    return {"text": text}


def text_columns(src: DataSource, first: dict) -> tuple[str, ...]:
    """The text columns of a classification set: its GLUE task's, else the layout (single sentence or one
    of :data:`PAIR_COLUMNS`) with the most columns present in the ``first`` row (ties: single sentence)."""
    if src.glue:
        return tuple(ours for ours, _ in LAYOUTS[src.glue].text)
    layouts = [("sentence",), *PAIR_COLUMNS]
    return max(layouts, key=lambda cols: sum(c in first for c in cols))


def classification_row(row: dict, columns: tuple[str, ...], spec: LabelSpec, position: int) -> dict:
    """``{<columns>, label, idx}`` of one row; ``position`` (0-based) is its ``idx`` when it has none."""
    out = {c: _text(row, c) for c in columns}
    out["label"] = label_value(row.get("label"), spec)
    out["idx"] = position if row.get("idx") is None else _whole(row["idx"], "idx")
    return out


def _whole(value, what: str) -> int:
    """An int from an int, a whole float (Parquet columns with nulls) or a numeric string (CSV)."""
    number = _number(value, what)
    if number != int(number):
        raise RowError(f"{what} {value!r} is not an integer")
    return int(number)


def _occurrences(context: str, text: str) -> list[int]:
    """Every offset at which ``text`` starts in ``context`` (overlapping ones included)."""
    found, start = [], context.find(text)
    while start != -1:
        found.append(start)
        start = context.find(text, start + 1)
    return found


def answer_start(context: str, text: str, start, number: int, fix: bool) -> tuple[int, bool]:
    """The checked offset of answer ``number`` (1-based) and whether it was moved.

    Raises:
        AnswerMismatch: ``start`` is not an int, negative, past the context or not where ``text`` is, and
            ``fix`` is off.
        RowError: ``fix`` is on but ``text`` does not occur in the context.
    """
    ok = isinstance(start, int) and not isinstance(start, bool) and 0 <= start
    if ok and context[start:start + len(text)] == text:
        return start, False
    found = _occurrences(context, text)
    if not fix:
        if not ok:
            problem = "is not an offset" if not isinstance(start, int) or isinstance(start, bool) else "is negative"
        elif start + len(text) > len(context):
            problem = f"runs past the context's end ({len(context)} characters)"
        else:
            problem = f"points at {context[start:start + len(text)]!r}"
        where = f"the text occurs at {found[:3]}" if found else "the text does not occur in the context"
        raise AnswerMismatch(f"answer {number} {text!r}: answer_start {start!r} {problem} ({where})")
    if not found:
        raise RowError(f"answer {number} {text!r} does not occur in the context, so its answer_start cannot be fixed")
    target = start if ok else 0
    return min(found, key=lambda s: (abs(s - target), s)), True


def qa_row(row: dict, fix: bool) -> tuple[dict, int]:
    """``{id, title, context, question, answers}`` of one row and the number of answer offsets it fixed."""
    out = {"id": _text(row, "id"), "title": _text(row, "title", empty_ok=True)}
    context, question = _text(row, "context"), _text(row, "question")
    answers = row.get("answers")
    if not isinstance(answers, dict) or not isinstance(answers.get("text"), list) \
            or not isinstance(answers.get("answer_start"), list):
        raise RowError("'answers' must be {text: [...], answer_start: [...]} (empty lists: unanswerable)")
    texts, starts = answers["text"], answers["answer_start"]
    if len(texts) != len(starts):
        raise RowError(f"'answers' has {len(texts)} texts but {len(starts)} answer_start values")
    fixed, checked = 0, []
    for number, (text, start) in enumerate(zip(texts, starts), 1):
        if not isinstance(text, str) or not text:
            raise RowError(f"answer {number}: text {text!r} is not a non-empty string")
        start, moved = answer_start(context, text, start, number, fix)
        checked.append(start)
        fixed += moved
    out.update(context=context, question=question, answers={"text": list(texts), "answer_start": checked})
    return out, fixed


def _numbered(tables: list[Table]):
    """``(table, index in table, row)`` of every row of ``tables`` in order."""
    for table in tables:
        for i, row in enumerate(table.rows):
            yield table, i, row


def _error(key: str, table: Table, i: int, row: dict, err: RowError) -> PipelineError:
    """One line naming the params key, the file, the line (and a QA row's id), the problem and the remedy."""
    qa_id = f" (id {row['id']!r})" if isinstance(row.get("id"), str) and "answers" in row else ""
    if isinstance(err, AnswerMismatch):
        hint = f"{key}.answer_mismatch: fix moves it to the nearest occurrence, drop drops the row"
    else:
        hint = f"{key}.bad_rows: drop drops such rows"
    return PipelineError(f"{key}: {table.where(i)}{qa_id}: {err} ({hint})")


def clean_split(tables: list[Table], src: DataSource, key: str, limit: int = 0) -> tuple[list[dict], dict[str, int]]:
    """The checked rows of one split (its tables concatenated) and counts of what was dropped or fixed.

    Args:
        tables: the split's files in order (or one hub split / generated table).
        src: the data set's settings (schema, GLUE task, label names, policies).
        key: its params key, e.g. ``prepare.datasets.qa``, named in errors.
        limit: keep the first ``limit`` good rows and stop (later rows are not checked); 0 keeps all.

    Returns:
        ``(rows, counts)``; counts has ``rows`` (kept), ``bad_rows_dropped``, and per schema
        ``blank_lines_dropped``/``headings_dropped`` (text) or ``answers_fixed``/``answer_mismatch_dropped``/
        ``duplicate_ids_renamed`` (qa).

    Raises:
        PipelineError: one line ``<key>: <file>: line <n>: <problem> (<how to drop or fix it>)``, or
            ``<key>: <files>: split is empty`` when no row is left.
    """
    counts = Counter(dict.fromkeys(_COUNTERS[src.type], 0))
    spec, columns, rows, places, first_drop = LabelSpec.of(src), None, [], [], ""
    for position, (table, i, row) in enumerate(_numbered(tables)):
        if limit and len(rows) >= limit:
            break
        try:
            if i in table.bad:
                raise RowError(table.bad[i])
            if src.type == "text":
                rows.append(text_row(row))
            elif src.type == "classification":
                columns = columns or text_columns(src, row)
                rows.append(classification_row(row, columns, spec, position))
            else:
                out, fixed = qa_row(row, src.answer_mismatch == "fix")
                rows.append(out)
                places.append((table.name, table.where(i)))
                counts["answers_fixed"] += fixed
        except Dropped as skip:
            counts[str(skip)] += 1
        except RowError as err:
            mismatch = isinstance(err, AnswerMismatch)
            if (src.answer_mismatch if mismatch else src.bad_rows) != "drop":
                raise _error(key, table, i, row, err) from None
            first_drop = first_drop or f"{table.where(i)}: {err}"
            counts["answer_mismatch_dropped" if mismatch else "bad_rows_dropped"] += 1
    if not rows:
        # Every row dropped is no row problem: say so with the first one, since dropping cannot fix it.
        why = f" (every row was dropped; the first: {first_drop})" if first_drop else ""
        raise PipelineError(f"{key}: {', '.join(t.name for t in tables)}: split is empty{why}")
    if src.type == "qa":
        counts["duplicate_ids_renamed"] = unique_ids(rows, places, key, src.duplicate_ids == "rename")
    counts["rows"] = len(rows)
    return rows, dict(counts)


def unique_ids(rows: list[dict], places: list[tuple[str, str]], key: str, rename: bool) -> int:
    """Make the ``id`` of every QA row of a split unique, in place; returns how many were renamed.

    Evaluation groups a question's windows and its gold answers by ``id`` (as the official SQuAD script
    and Hugging Face's ``postprocess_qa_predictions`` do), so two questions sharing an id would be pooled:
    one answer cut from either context, one question missing from the scores.

    Args:
        rows: the split's checked rows (``id`` strings).
        places: where each came from: its file and :meth:`Table.where` (``<file>: line <n>``).
        key: the data set's params key, named in the error.
        rename: give a repeated id the suffix ``_<n>``, ``n`` from 2 up to the first id the split does not
            hold; else refuse it.

    Raises:
        PipelineError: without ``rename``, one line naming the id, both rows and the remedy.
    """
    taken, first, renamed = {row["id"] for row in rows}, {}, 0
    for row, place in zip(rows, places):
        qid = row["id"]
        if qid not in first:
            first[qid] = place
            continue
        if not rename:
            (name, earlier), where = first[qid], place[1]
            earlier = earlier.removeprefix(f"{name}: ") if name == place[0] else earlier
            raise PipelineError(f"{key}: {where}: question id {qid!r} is already the id of {earlier} (the two "
                                f"would be scored as one question; {key}.duplicate_ids: rename renames it)")
        n = 2
        while f"{qid}_{n}" in taken:
            n += 1
        row["id"] = f"{qid}_{n}"
        taken.add(row["id"])
        first[row["id"]] = place
        renamed += 1
    return renamed


# Counters reported for each schema (all present, zero or not, so metrics diff lines up across runs).
_COUNTERS = {
    "text": ("rows", "bad_rows_dropped", "blank_lines_dropped", "headings_dropped"),
    "classification": ("rows", "bad_rows_dropped"),
    "qa": ("rows", "bad_rows_dropped", "answers_fixed", "answer_mismatch_dropped", "duplicate_ids_renamed"),
}
