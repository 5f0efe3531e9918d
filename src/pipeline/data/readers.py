"""Reading one data file into rows, remembering where each row came from so errors can name its line.

Formats, by extension, each also gzip-compressed (``<name>.<ext>.gz``):

* ``.csv``: comma-separated with a header row, quoted fields as written by spreadsheets and pandas.
* ``.tsv``: tab-separated with a header row, read with quoting off: tab-separated corpora such as GLUE
  put unescaped double quotes inside sentences.
* ``.jsonl``: JSON lines, one object per line (blank lines skipped).
* ``.json``: a JSON array of objects, an object holding one such array in a top-level field
  (``{"data": [...]}``, ``{"version": "1.1", "data": [...]}``), or JSON lines (what
  ``datasets.Dataset.to_json`` writes under this extension).
* ``.parquet``: Apache Parquet (read with pyarrow, the reader behind pandas and ``datasets``).
* ``.txt`` (and WikiText's ``.raw``/``.tokens``): plain text, one row ``{"text": line}`` per line, stripped.

CSV/TSV are read with the standard library's ``csv`` module and JSON with its ``json`` module rather than
through pandas or ``datasets``, because those do not tell which line of the file a row came from: every
error here names the file and the 1-based line (or row, for formats without lines). Text files need no
parser: a row is a line. Text must be UTF-8 (a byte-order mark is ignored).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core.errors import PipelineError

TEXT_SUFFIXES = (".txt", ".raw", ".tokens")
SUFFIXES = (".tsv", ".csv", ".json", ".jsonl", ".parquet", *TEXT_SUFFIXES)


@dataclass
class Table:
    """Rows read from one source file (or one hub split, or a generator) and where each came from."""

    name: str
    """The file (or ``hub:<spec> <split>``), the first thing every error about a row names."""
    rows: list[dict]
    locate: Callable[[int], str] | None = None
    """Row index -> place in the file, e.g. ``line 12`` or ``data[0].paragraphs[3].qas[1]``;
    None: ``row <index + 1>``."""
    bad: dict[int, str] = field(default_factory=dict)
    """Row index -> a problem the reader saw (a line with too few or too many fields)."""
    columns: tuple = ()
    """The header's columns, for delimited files."""
    renamed: dict[str, str] | None = None
    """The pipeline's column -> the alias it was read from (:mod:`pipeline.data.columns`); None: the columns
    are the file's own, not yet mapped to the pipeline's."""

    def where(self, index: int) -> str:
        """``<file>: line <n>`` (or ``row <n>``, 1-based) of row ``index``."""
        return f"{self.name}: {self.locate(index) if self.locate else f'row {index + 1}'}"


def suffix_of(path: str | Path) -> str:
    """The format extension of a file name, ``.gz`` aside: ``dev.tsv.gz`` -> ``.tsv``; ``""`` if unknown."""
    name = Path(path).name.lower().removesuffix(".gz")
    return next((s for s in SUFFIXES if name.endswith(s)), "")


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes, decompressed when its name ends in ``.gz``.

    Raises:
        PipelineError: the file cannot be read or is not valid gzip.
    """
    try:
        data = Path(path).read_bytes()
        return gzip.decompress(data) if str(path).lower().endswith(".gz") else data
    except (OSError, EOFError, zlib.error) as err:
        raise PipelineError(f"{path}: cannot read: {err}") from None


def decode(path: str | Path, data: bytes) -> str:
    """UTF-8 text of ``data`` without a leading byte-order mark.

    Raises:
        PipelineError: naming the line and byte that are not UTF-8 (a file in Latin-1 or cp1252).
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise PipelineError(
            f"{path}: line {line}: not UTF-8 (byte 0x{data[err.start]:02x}); convert the file to UTF-8"
        ) from None
    return text.removeprefix("\ufeff")


def _lines(numbers: list[int]) -> Callable[[int], str]:
    return lambda i: f"line {numbers[i]}"


def read_delimited(
    path: str, text: str, delimiter: str, quoting: int, columns: tuple | None = None, keep: set | None = None
) -> Table:
    """Rows of a CSV/TSV file as ``{column: string}``.

    Args:
        columns: the columns of a file without a header row; None: the first line is the header.
        quoting: a ``csv.QUOTE_*`` constant (``QUOTE_NONE`` for TSV files whose text holds quotes).
        keep: the columns to keep (MNLI's parse trees are most of its bytes); None keeps all.

    Returns:
        A :class:`Table` (blank lines skipped). A line with another number of fields than the header is
        kept with the fields it has and its problem in ``Table.bad``; the validator decides.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=True)
    rows, numbers, bad = [], [], {}
    try:
        if columns is None:
            columns = tuple(next(reader, ()))
            if not columns:
                raise PipelineError(f"{path}: no header line")
        for record in reader:
            if not record:
                continue
            if len(record) != len(columns):
                bad[len(rows)] = f"{len(record)} fields, expected {len(columns)} ({', '.join(columns)})"
            rows.append({c: v for c, v in zip(columns, record) if keep is None or c in keep})
            numbers.append(reader.line_num)
    except csv.Error as err:
        raise PipelineError(f"{path}: line {reader.line_num}: {err}") from None
    return Table(path, rows, _lines(numbers), bad, columns)


def read_json_lines(path: str, text: str) -> Table:
    """Rows of a JSON-lines file; each non-blank line must be one JSON object."""
    rows, numbers = [], []
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise PipelineError(f"{path}: line {n}: not valid JSON ({err.msg})") from None
        if not isinstance(row, dict):
            raise PipelineError(f"{path}: line {n}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
        numbers.append(n)
    return Table(path, rows, _lines(numbers))


def parse_json(path: str, text: str) -> object | None:
    """The JSON document in ``text``, or None when the file is JSON lines (more than one value).

    Raises:
        PipelineError: naming the line of a syntax error.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg == "Extra data":  # a second value after the first: JSON lines
            return None
        raise PipelineError(f"{path}: line {err.lineno}: not valid JSON ({err.msg})") from None


def records_of(path: str, doc: object) -> list:
    """The list of records in a JSON document: the document itself, or its one top-level list field.

    Raises:
        PipelineError: an object with no list field or with several (naming them).
    """
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        fields = [key for key, value in doc.items() if isinstance(value, list)]
        if len(fields) == 1:
            return doc[fields[0]]
        what = f"several list fields {fields}" if fields else f"no list field (keys: {sorted(doc)[:8]})"
        raise PipelineError(f"{path}: a JSON object with {what}; expected one list of rows such as 'data'")
    raise PipelineError(f"{path}: expected a JSON array or object, got {type(doc).__name__}")


def read_parquet(path: str, data: bytes) -> Table:
    """Rows of a Parquet file as plain Python values (lists and dicts for nested columns)."""
    import pyarrow as pa  # a dependency of ``datasets``; heavy, only for Parquet sources
    import pyarrow.parquet as pq

    try:
        return Table(path, pq.read_table(io.BytesIO(data)).to_pylist())
    except pa.ArrowException as err:  # the base of pyarrow's errors for a truncated or non-Parquet file
        raise PipelineError(f"{path}: not a readable Parquet file ({str(err).splitlines()[0]})") from None


def read_text_lines(path: str, text: str) -> Table:
    """One row ``{"text": line.strip()}`` per line, blank ones included (the text schema drops them)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":  # the newline ending the last line starts no line
        lines.pop()
    return Table(path, [{"text": line.strip()} for line in lines], lambda i: f"line {i + 1}")
