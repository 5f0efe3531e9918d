"""The base stage's work (``stages/base.py``): the starting MLM model, randomly initialised from
``model`` (``base: scratch``) or loaded from a pretrained checkpoint, written as an artifact."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import loader
from pipeline.models.build import ArchParams
from pipeline.core.files import parents
from pipeline.core.runtime import setup
from pipeline.data.tokenizer import load_tokenizer
from pipeline.models.build import init_model
from pipeline.models.store import write_artifact


def base_stage(arch: ArchParams, tokenizer_dir: Path, out: Path) -> None:
    """Build the MLM model of ``arch`` with the vocabulary of ``tokenizer_dir`` and write it to ``out``.

    Writes: the artifact directory ``out`` (weights, config, the tokenizer's files, ``pipeline.json`` with
    ``method`` ``scratch`` or ``pretrained`` and the resolved ``model`` params).

    Raises:
        PipelineError: an unreadable tokenizer, an unsupported family or a checkpoint that does not load
        (from :func:`~pipeline.models.build.init_model`).
    """
    setup(arch.seed)
    tokenizer = load_tokenizer(tokenizer_dir)
    model = init_model(arch, "mlm", len(tokenizer), tokenizer.pad_token_id)
    method = "scratch" if arch.base == "scratch" else "pretrained"
    meta = {"stage": "base", "head": "mlm", "format": "dense", "method": method, "parents": parents(tokenizer_dir),
            "params": loader.as_dict(arch)}
    write_artifact(out, model, tokenizer_dir, meta)
