"""Fetching data sets: embedded synthetic generators, hub data sets (via ``datasets``), or local files as
downloaded (:mod:`pipeline.data.local`), every row checked (:mod:`pipeline.data.validate`)."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from pipeline.core.errors import PipelineError
from pipeline.data import local, synthetic
from pipeline.data.columns import alias_notes, map_columns
from pipeline.data.io import EXTRA_SPLITS, SPLITS
from pipeline.data.params import DataSource
from pipeline.data.readers import Table
from pipeline.data.splits import check_leakage, split_off
from pipeline.data.validate import clean_split

_GENERATORS = {
    "text": lambda n, seed: [{"text": line} for line in synthetic.generate_corpus(n, seed)],
    "classification": synthetic.generate_classification,
    "qa": synthetic.generate_qa,
}
# Hub splits renamed to the pipeline's split names (the others keep theirs): MNLI has no plain
# "validation" but a matched and a mismatched one (its test splits are unlabelled and not used).
_HUB_SPLIT_NAMES = {"glue/mnli": {"validation_matched": "validation"}}


def hub_splits(spec: str, available) -> dict[str, str]:
    """``{pipeline split: hub split}`` for a hub data set ``spec`` (``name[/config]``) with ``available`` splits.

    Example: ``glue/mnli`` -> ``{"train": "train", "validation": "validation_matched",
    "validation_mismatched": "validation_mismatched"}``; splits the data set lacks are left out.
    """
    renames = _HUB_SPLIT_NAMES.get(spec, {})
    wanted = {renames.get(s, s): s for s in available}
    return {split: wanted[split] for split in (*SPLITS, *EXTRA_SPLITS) if split in wanted}


def _synthetic(src: DataSource, seed: int) -> dict[str, list[dict]]:
    gen = _GENERATORS[src.type]
    if src.unanswerable_fraction:
        gen = functools.partial(gen, unanswerable_fraction=src.unanswerable_fraction)
    # Distinct derived seeds: validation rows must not be a prefix of the training rows.
    return {"train": gen(src.train_size, seed * 1000 + 1), "validation": gen(src.validation_size, seed * 1000 + 2)}


def _hub(src: DataSource) -> dict[str, list[Table]]:
    """``{split: [table]}`` of a hub data set (``hub:<name>[/<config>]``)."""
    import datasets  # heavy import, only for non-synthetic sources

    spec = src.source[4:]
    hub_name, _, config = spec.partition("/")
    loaded = datasets.load_dataset(hub_name, config or None)
    return {
        ours: [Table(f"{src.source} {theirs}", loaded[theirs].to_list())]
        for ours, theirs in hub_splits(spec, list(loaded)).items()
    }


def _wanted(src: DataSource) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(splits that must be there, splits not read)`` of a hub or local source."""
    if src.evaluation_only:
        return ("validation",), ("train",)
    if src.validation_from_train:
        return ("train",), ("validation", *EXTRA_SPLITS)
    return ("train", "validation"), ()


def _read(src: DataSource, name: str) -> dict[str, list[Table]]:
    """The raw tables of each split of a hub or local source; library errors become one line naming it."""
    key, (need, skip) = f"prepare.datasets.{name}", _wanted(src)
    if not src.source.startswith("hub:"):
        path = Path(src.source)
        if not path.is_dir():
            raise PipelineError(f"{key}.source: '{path}' is not a directory")
        try:
            return local.read_dir(path, src.type, src.glue, src.columns, key, need, skip)
        except PipelineError as err:  # the file is named; add the data set's key
            raise PipelineError(f"{key}: {err}") from None
    try:
        tables = _hub(src)
    except Exception as err:  # datasets raises many types (network, format, missing config)
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]  # some messages are empty
        raise PipelineError(f"{key}.source '{src.source}': {first}") from None
    for split in need:
        if split not in tables:
            fix = local.NO_FILE_FIX[split].format(key=key)
            raise PipelineError(f"{key}.source '{src.source}': no '{split}' split; or set {fix}")
    return {split: found for split, found in tables.items() if split not in skip}


def _tables(src: DataSource, name: str, seed: int) -> tuple[dict[str, list[Table]], dict[str, int]]:
    """``({split: tables with the pipeline's columns}, {split: row limit})``; prints a note per alias used."""
    key = f"prepare.datasets.{name}"
    if src.source == "synthetic":
        generated = _synthetic(src, seed).items()
        tables = {split: [Table(f"synthetic {split}", rows, renamed={})] for split, rows in generated}
        return tables, dict.fromkeys(tables, 0)  # the generators made exactly the sizes asked for
    tables = {split: [map_columns(t, src.type, src.columns, key) for t in found]
              for split, found in _read(src, name).items()}
    for note in alias_notes([t for found in tables.values() for t in found], key):
        print(note, file=sys.stderr)
    # The whole train split is checked when rows are then moved (split-off) or dropped (leakage) before the limit.
    whole = bool(src.validation_from_train) or src.leakage == "drop"
    return tables, {split: 0 if split == "train" and whole else src.validation_size if split != "train"
                    else src.train_size for split in tables}


def fetch_counted(src: DataSource, name: str, seed: int) -> tuple[dict[str, list[dict]], dict[str, dict[str, int]]]:
    """The checked splits of one data set (train, validation, and validation_mismatched where the source has
    it; no train for an evaluation-only one) and, per split, counts of rows kept, dropped and fixed
    (:func:`pipeline.data.validate.clean_split`) and of train/validation duplicates
    (:func:`pipeline.data.splits.check_leakage`); ``split_off`` in train for ``validation_from_train``.

    Args:
        src: where the data come from (``prepare.datasets.<name>``).
        name: the data set's name, used in error messages.
        seed: seed of the synthetic generators and of the split-off.

    Raises:
        PipelineError: a missing source, file, column or split, an unreadable file, a bad row (one line
            naming the file and line), or train/validation leakage the policy refuses.
    """
    key = f"prepare.datasets.{name}"
    tables, limits = _tables(src, name, seed)
    out, counts = {}, {}
    for split in (*SPLITS, *EXTRA_SPLITS):
        if split in tables:
            out[split], counts[split] = clean_split(tables[split], src, key, limits[split])
    if src.validation_from_train:
        out["train"], out["validation"] = split_off(out["train"], src.validation_from_train, seed, src.type, key)
        counts["train"].update(rows=len(out["train"]), split_off=len(out["validation"]))
        counts["validation"] = {**dict.fromkeys(counts["train"], 0), "rows": len(out["validation"])}
        del counts["validation"]["split_off"]
    check_leakage(out, counts, src, key)
    for split, limit in (("train", src.train_size), ("validation", src.validation_size)):
        if limit and split in out and len(out[split]) > limit:  # after a split-off or a drop
            out[split] = out[split][:limit]
            counts[split]["rows"] = limit
    return out, counts


def fetch(src: DataSource, name: str, seed: int) -> dict[str, list[dict]]:
    """The checked splits of one data set, as :func:`fetch_counted` without the counts."""
    return fetch_counted(src, name, seed)[0]
