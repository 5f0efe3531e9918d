"""A local data directory as downloaded: which files hold which split, and reading them into tables.

A file belongs to a split when its name, without the format extension (:data:`readers.SUFFIXES`) and an
optional ``.gz``, is

* the split's name: ``train``; ``validation``, ``valid``, ``dev`` or ``val`` (also ``dev_matched``,
  ``validation_matched``); ``validation_mismatched`` or ``dev_mismatched`` (MNLI's second dev set),
* that name and a ``-`` suffix: ``train-v1.1.json`` (SQuAD), ``train-00000-of-00002.parquet`` (hub shards),
* or a prefix and ``.`` then the name: ``wiki.train.raw``, ``wiki.valid.tokens`` (WikiText).

A subdirectory named like a split (``train/``, ``valid/``) holds that split in any number of files. The
files of one split are read in name order and concatenated; they must share one extension (so a
``train.jsonl`` next to a ``train.jsonl.gz`` copy is an error, not twice the data). Other files
(``test.tsv``, ``README``, MRPC's ``msr_paraphrase_train.txt``, ``dev_ids.tsv``) are ignored.

Examples: GLUE's ``MNLI/`` (``train.tsv``, ``dev_matched.tsv``, ``dev_mismatched.tsv``), SQuAD's
``train-v1.1.json``/``dev-v1.1.json`` side by side, ``wikitext-103-raw/`` (``wiki.train.raw``,
``wiki.valid.raw``), or ``train.csv``/``dev.csv``.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from pipeline.core.errors import PipelineError
from pipeline.data import readers, squad
from pipeline.data.glue_tsv import read_glue_tsv
from pipeline.data.readers import Table

SPLIT_NAMES: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "validation": ("validation", "valid", "dev", "val", "validation_matched", "dev_matched"),
    "validation_mismatched": ("validation_mismatched", "dev_mismatched"),
}


def split_of(name: str) -> str | None:
    """The split a file or directory name belongs to (see the module doc), or None."""
    stem = name.lower().removesuffix(".gz")
    suffix = readers.suffix_of(stem)
    stem = stem.removesuffix(suffix) if suffix else stem
    for split, aliases in SPLIT_NAMES.items():
        for alias in aliases:
            if stem == alias or stem.startswith(f"{alias}-") or stem.endswith(f".{alias}"):
                return split
    return None


def split_files(path: Path) -> dict[str, list[Path]]:
    """``{split: files in name order}`` of a data directory; splits without files are left out.

    Raises:
        PipelineError: one split's files have different extensions (naming them).
    """
    found: dict[str, list[Path]] = {}
    for entry in sorted(path.iterdir()):
        split = split_of(entry.name)
        if split is None:
            continue
        if entry.is_dir():
            files = sorted(f for f in entry.iterdir() if f.is_file() and readers.suffix_of(f.name))
            found.setdefault(split, []).extend(files)
        elif readers.suffix_of(entry.name):
            found.setdefault(split, []).append(entry)
    for split, files in found.items():
        kinds = {_extension(f) for f in files}
        if len(kinds) > 1:
            raise PipelineError(
                f"{path}: the {split} split has files of different formats "
                f"({', '.join(f.name for f in files)}); keep one"
            )
    return found


def _extension(file: Path) -> str:
    """``.tsv.gz`` of ``dev.tsv.gz``: the format extension and the compression one."""
    suffix = readers.suffix_of(file.name)
    return suffix + (".gz" if file.name.lower().endswith(".gz") else "")


def read_file(file: Path, schema: str, glue: str = "", columns: dict[str, str] | None = None,
              key: str = "prepare.datasets.<name>") -> Table:
    """Rows of one file for a data set of ``schema`` (``text``/``classification``/``qa``), with the file's
    own column names (except GLUE TSV files, mapped to the pipeline's on reading).

    Args:
        glue: a GLUE task whose original layout ``.tsv`` files have (:mod:`pipeline.data.glue_tsv`).
        columns: the data set's ``columns`` mapping, for a GLUE TSV file.
        key: the data set's params key, named in errors.

    Raises:
        PipelineError: a plain-text file for a schema other than ``text``, bytes that are not UTF-8,
            malformed JSON/CSV/Parquet, SQuAD articles for another schema; always naming the file.
    """
    suffix, name = readers.suffix_of(file.name), str(file)
    data = readers.read_bytes(file)
    if suffix == ".parquet":
        return readers.read_parquet(name, data)
    text = readers.decode(name, data)
    if suffix in readers.TEXT_SUFFIXES:
        if schema != "text":
            raise PipelineError(f"{name}: a plain-text file holds a text corpus, not a '{schema}' data set")
        return readers.read_text_lines(name, text)
    if suffix == ".tsv" and glue:
        return read_glue_tsv(name, text, glue, columns, key)
    if suffix in (".tsv", ".csv"):
        tsv = suffix == ".tsv"
        return readers.read_delimited(name, text, "\t" if tsv else ",", csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL)
    doc = readers.parse_json(name, text) if suffix == ".json" else None
    if doc is None:
        return readers.read_json_lines(name, text)
    records = readers.records_of(name, doc)
    if squad.is_squad(records):
        if schema != "qa":
            raise PipelineError(f"{name}: SQuAD articles (data -> paragraphs -> qas) for a '{schema}' data set")
        return squad.flatten(name, records)
    bad = {i: f"expected a JSON object, got {type(r).__name__}" for i, r in enumerate(records)
           if not isinstance(r, dict)}
    return Table(name, [r if isinstance(r, dict) else {} for r in records], bad=bad)


# What to do when a split has no file, by split: the params that make the data set valid without one.
NO_FILE_FIX = {
    "train": "{key}.evaluation_only: true for a data set that is only evaluated",
    "validation": "{key}.validation_from_train: 0.1 to split one off the train rows",
}


def read_dir(path: Path, schema: str, glue: str = "", columns: dict[str, str] | None = None,
             key: str = "prepare.datasets.<name>", need: tuple[str, ...] = ("train", "validation"),
             skip: tuple[str, ...] = ()) -> dict[str, list[Table]]:
    """``{split: tables}`` of a local data directory.

    Args:
        columns, key: as :func:`read_file`.
        need: the splits that must have files (an evaluation-only data set needs no train file; one whose
            validation is split off train, no validation file).
        skip: splits whose files are not read (the train files of an evaluation-only data set).

    Raises:
        PipelineError: the directory lacks a needed split (naming what was looked for and the setting that
            does without it), a file is empty, or a file cannot be read.
    """
    found = split_files(path)
    for split in need:
        if split not in found:
            names = "/".join(SPLIT_NAMES[split])
            fix = NO_FILE_FIX[split].format(key=key)
            raise PipelineError(
                f"{path}: no {split} file (looked for <name>, <name>-*, *.<name> with <name> {names} and "
                f"extension {'/'.join(readers.SUFFIXES)}[.gz], or a <name>/ directory); or set {fix}"
            )
    for split in skip:
        if split in found:  # not read on purpose: say so, the files are there
            why = "evaluation_only" if split == "train" else "validation_from_train"
            print(f"note: {key}: not reading {', '.join(f.name for f in found[split])} ({key}.{why})", file=sys.stderr)
    found = {split: files for split, files in found.items() if split not in skip}
    for split, files in found.items():
        for file in files:
            if file.stat().st_size == 0:
                raise PipelineError(f"{file}: {split} split is empty")
    return {split: [read_file(f, schema, glue, columns, key) for f in found[split]]
            for split in SPLIT_NAMES if split in found}  # train first: its errors before the dev file's
