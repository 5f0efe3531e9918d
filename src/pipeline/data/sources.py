"""Fetching data sets: embedded synthetic generators, hub data sets, or local files via ``datasets``."""

from __future__ import annotations

import functools
from pathlib import Path

from pipeline.core.errors import PipelineError
from pipeline.data import synthetic
from pipeline.data.io import EXTRA_SPLITS, SPLITS, check_rows
from pipeline.data.params import DataSource

_GENERATORS = {
    "text": lambda n, seed: [{"text": line} for line in synthetic.generate_corpus(n, seed)],
    "classification": synthetic.generate_classification,
    "qa": synthetic.generate_qa,
}
_LOCAL_FORMATS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}
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


def _local_files(path: Path) -> dict[str, tuple[str, str]]:
    """``{split: (format, file)}`` for a directory with ``train.*``/``validation.*`` files (and optionally
    ``validation_mismatched.*``)."""
    found = {}
    for split in (*SPLITS, *EXTRA_SPLITS):
        for suffix, fmt in _LOCAL_FORMATS.items():
            if (path / f"{split}{suffix}").is_file():
                found[split] = (fmt, str(path / f"{split}{suffix}"))
                break
        else:
            if split in SPLITS:
                raise PipelineError(f"{path}: no {split}.json/.jsonl/.csv/.parquet file")
    return found


def _with_datasets(src: DataSource, name: str) -> dict[str, list[dict]]:
    import datasets  # heavy import, only for non-synthetic sources

    try:
        if src.source.startswith("hub:"):
            spec = src.source[4:]
            hub_name, _, config = spec.partition("/")
            loaded = datasets.load_dataset(hub_name, config or None)
            splits = {ours: loaded[theirs] for ours, theirs in hub_splits(spec, list(loaded)).items()}
        else:
            path = Path(src.source)
            if not path.is_dir():
                raise PipelineError(f"prepare.datasets.{name}.source: '{path}' is not a directory")
            datasets.disable_progress_bars()  # local files load in a blink; keep stderr to the error
            files = _local_files(path)
            for split, (_, file) in files.items():
                if Path(file).stat().st_size == 0:  # datasets fails on it with an unrelated message
                    raise PipelineError(f"prepare.datasets.{name}.source: {file}: {split} split is empty")
            splits = {
                split: datasets.load_dataset(fmt, data_files=file, split="train")
                for split, (fmt, file) in files.items()
            }
    except PipelineError:
        raise
    except Exception as err:  # datasets raises many types (network, format, missing config)
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]  # some messages are empty
        raise PipelineError(f"prepare.datasets.{name}.source '{src.source}': {first}") from None
    out = {}
    for split in (*SPLITS, *EXTRA_SPLITS):
        if split not in splits:
            if split in EXTRA_SPLITS:
                continue
            raise PipelineError(f"prepare.datasets.{name}.source '{src.source}': no '{split}' split")
        limit = src.train_size if split == "train" else src.validation_size
        table = splits[split]
        if limit:
            table = table.select(range(min(limit, len(table))))
        rows = table.to_list()
        if src.type == "text":
            rows = [r for r in rows if str(r.get("text", "")).strip()]  # wikitext has blank lines
        out[split] = rows
    return out


def fetch(src: DataSource, name: str, seed: int) -> dict[str, list[dict]]:
    """The splits of one data set (train, validation, and validation_mismatched where the source has it),
    checked against its schema.

    Args:
        src: where the data come from (``prepare.datasets.<name>``).
        name: the data set's name, used in error messages.
        seed: seed of the synthetic generators.
    """
    rows = _synthetic(src, seed) if src.source == "synthetic" else _with_datasets(src, name)
    for split, split_rows in rows.items():
        check_rows(split_rows, src.type, f"prepare.datasets.{name} ({src.source}) {split}")
    return rows
