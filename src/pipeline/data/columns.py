"""Columns named otherwise: a data set's ``columns`` mapping and the common aliases, resolved against a file's
header before its rows are checked.

Public copies of the same data name their columns differently: SST-2 is shared with ``sentence\\tlabel``
(GLUE), ``label\\ttext_a`` or ``text\\tlabel``; sentence pairs as ``text_a``/``text_b``; hub data sets
sometimes say ``labels``. Each column the schema needs is looked up

1. under the name ``prepare.datasets.<name>.columns`` gives it (``{sentence: text_a}``), which must exist;
2. else under its own name (for a GLUE task, the task's file column, :mod:`pipeline.data.glue_tsv`);
3. else under one of its :data:`ALIASES` (first match), reported in one note line so the user sees what was
   read as what.

A column found none of these ways is an error naming the file, its columns and the ``columns`` entry that
maps it. A column present in some rows only is not handled here: such rows are bad rows
(:mod:`pipeline.data.validate`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pipeline.core.errors import PipelineError
from pipeline.data.io import COLUMNS, PAIR_COLUMNS
from pipeline.data.readers import Table

ALIASES: dict[str, tuple[str, ...]] = {
    "sentence": ("text", "text_a"),
    "sentence1": ("text_a",),
    "sentence2": ("text_b",),
    "label": ("labels",),
    "text": ("sentence", "content"),
}
"""The pipeline's column -> other names common copies give it (the names of HF ``run_glue.py``'s
``text_a``/``text_b`` convention and of the hub's ``text``/``labels`` columns)."""


def header_of(table: Table) -> list[str]:
    """The columns of a table: its header (CSV/TSV), else every key of its rows in first-seen order."""
    if table.columns:
        return list(table.columns)
    seen: dict[str, None] = {}
    for row in table.rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def resolve(wanted: Mapping[str, str], header: Sequence[str], explicit: Mapping[str, str], key: str,
            where: str, hint: str = "") -> tuple[dict[str, str], dict[str, str]]:
    """``({ours: file column}, {ours: alias used})`` for the columns in ``wanted``.

    Args:
        wanted: ``{ours: default file column}`` (the schema's name, or a GLUE task's file column).
        header: the file's columns.
        explicit: ``prepare.datasets.<name>.columns``; its entries replace the defaults and must exist.
        key: the data set's params key, named in errors (``prepare.datasets.cls``).
        where: the file (or hub split), named in errors.
        hint: added to the missing-column error (a GLUE task's "is glue the right task?").

    Raises:
        PipelineError: a mapped column the file lacks, or a needed column found under no name; the message
            gives the ``columns`` entry that maps it.
    """
    extra = sorted(set(explicit) - set(wanted))
    if extra:
        raise PipelineError(f"{key}.columns: {extra[0]!r} is not a column this data set reads from {where} "
                            f"(it reads {', '.join(wanted)})")
    found, aliased, missing = {}, {}, []
    for ours, default in wanted.items():
        theirs = explicit.get(ours, default)
        if theirs in header:
            found[ours] = theirs
        elif ours in explicit:
            raise PipelineError(f"{key}.columns: {where} has no column {theirs!r} (its columns: {list(header)})")
        else:
            alias = next((a for a in ALIASES.get(ours, ()) if a in header and a not in found.values()), None)
            if alias is None:
                missing.append(ours)
            else:
                found[ours] = aliased[ours] = alias
    if missing:
        raise PipelineError(_missing(missing, wanted, header, set(found.values()), key, where, hint))
    return found, aliased


def _missing(missing: list[str], wanted: Mapping[str, str], header: Sequence[str], used: set[str], key: str,
             where: str, hint: str) -> str:
    """The error for columns found under no name, with the ``columns`` entry to add (concrete when the file
    has exactly as many unused columns as are missing; a column the pipeline knows under its own name, such as
    ``idx``, is never suggested for another)."""
    own = {c for columns in COLUMNS.values() for c in columns} | {"idx"}
    unused = [c for c in header if c not in used and c not in own]
    if len(unused) == len(missing):
        entry = ", ".join(f"{ours}: {theirs}" for ours, theirs in zip(missing, unused))
    else:
        entry = ", ".join(f"{ours}: <column>" for ours in missing)
    names = [wanted[c] if wanted[c] == c else f"{c} (file column {wanted[c]!r})" for c in missing]
    return (f"{where}: no column {', '.join(names)} in its columns {list(header)}{hint}; name the file's column "
            f"with {key}.columns: {{{entry}}}")


def wanted_columns(schema: str, header: Sequence[str], explicit: Mapping[str, str]) -> dict[str, str]:
    """``{ours: ours}`` of the columns a table of ``schema`` needs, given its header.

    A classification table needs ``label`` and the text layout (single ``sentence`` or one of
    :data:`~pipeline.data.io.PAIR_COLUMNS`) with the most columns present or mapped; with none present,
    ``text_a``/``text_b`` in the header mean a pair, anything else a single sentence. ``idx`` is optional.
    """
    if schema != "classification":
        return {c: c for c in COLUMNS[schema]}
    present = set(header) | set(explicit)
    layouts = [("sentence",), *PAIR_COLUMNS]
    best = max(layouts, key=lambda cols: sum(c in present for c in cols))
    if not any(c in present for c in best) and {"text_a", "text_b"} <= set(header):
        best = ("sentence1", "sentence2")
    optional = ("idx",) if "idx" in explicit else ()
    return {c: c for c in (*best, "label", *optional)}


def map_columns(table: Table, schema: str, explicit: Mapping[str, str], key: str) -> Table:
    """``table`` with its columns renamed to the pipeline's (see the module doc); a table already mapped
    (``Table.renamed`` set: a GLUE TSV file) is returned as is.

    Raises:
        PipelineError: as :func:`resolve`.
    """
    if table.renamed is not None:
        return table
    header = header_of(table)
    found, aliased = resolve(wanted_columns(schema, header, explicit), header, explicit, key, table.name)
    renames = {theirs: ours for ours, theirs in found.items() if theirs != ours}
    if not renames:
        return Table(table.name, table.rows, table.locate, table.bad, table.columns, {})
    targets = set(renames.values())
    rows = []
    for row in table.rows:
        out = {k: v for k, v in row.items() if k not in targets and k not in renames}
        out.update({ours: row[theirs] for theirs, ours in renames.items() if theirs in row})
        rows.append(out)
    columns = tuple(renames.get(c, c) for c in table.columns if c not in targets)
    return Table(table.name, rows, table.locate, table.bad, columns, aliased)


def alias_notes(tables: Sequence[Table], key: str) -> list[str]:
    """One line per alias used across ``tables``: what was read as what, in which files."""
    files: dict[tuple[str, str], list[str]] = {}
    for table in tables:
        for ours, theirs in (table.renamed or {}).items():
            files.setdefault((ours, theirs), []).append(table.name)
    return [
        f"note: {key}: read column {theirs!r} as {ours!r} in {', '.join(names)} (a common alias; "
        f"{key}.columns: {{{ours}: {theirs}}} says so explicitly)"
        for (ours, theirs), names in files.items()
    ]
