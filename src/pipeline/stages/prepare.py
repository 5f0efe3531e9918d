"""The prepare stage's work (``stages/prepare.py``): the data sets (train/validation JSON lines) and the
tokenizer, everything checked before anything is written."""

from __future__ import annotations

from pathlib import Path

from pipeline.core.files import atomic_dir, write_json
from pipeline.data.io import write_jsonl
from pipeline.data.labels import write_labels
from pipeline.data.params import TOKENIZER, PrepareParams
from pipeline.data.sources import fetch_counted
from pipeline.data.vocab import check_tokenizer, save_tokenizer


def prepare_stage(only: str | None, values: list, out: Path, metrics: Path | None = None) -> None:
    """Build what ``only`` names (:meth:`~pipeline.data.params.PrepareParams.select`) from the loaded ``values``.

    Args:
        only: None (every data set and the tokenizer), :data:`~pipeline.data.params.TOKENIZER` or one data set.
        values: the sections :meth:`~pipeline.data.params.PrepareParams.sections` named, as loaded.
        out: the data directory: ``<out>/tokenizer`` and ``<out>/<dataset>/``.
        metrics: JSON file of rows kept, dropped and fixed per data set and split (None: not written).

    Writes: ``<out>/tokenizer`` (unless one data set only), ``<out>/<dataset>/<split>.jsonl`` and its class
    names, each directory whole or not at all; then ``metrics``.

    Raises:
        PipelineError: a tokenizer or data source that cannot be read or fails its checks (before any write).
    """
    cfg = PrepareParams.select(only, values)
    # Check the tokenizer, fetch and check the data, all before writing anything.
    if only in (None, TOKENIZER):
        check_tokenizer(cfg.tokenizer)
    fetched = {name: fetch_counted(src, name, cfg.seed) for name, src in cfg.datasets.items()}
    if only in (None, TOKENIZER):
        with atomic_dir(out / TOKENIZER) as tmp:
            save_tokenizer(cfg.tokenizer, tmp)
    for name, (splits, _) in fetched.items():
        with atomic_dir(out / name) as tmp:
            for split, rows in splits.items():
                write_jsonl(tmp / f"{split}.jsonl", rows)
            write_labels(tmp, cfg.datasets[name])  # class names, when known
    if metrics:
        write_json(metrics, {name: counts for name, (_, counts) in fetched.items()})
