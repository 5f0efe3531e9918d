"""Loading the pipeline's tokenizer (a prepared directory, an artifact, a hub name or a ``pkg:`` reference)."""

from __future__ import annotations

import os

from pipeline.core.errors import PipelineError
from pipeline.core.locations import resolve_location


def load_tokenizer(path: str | os.PathLike):
    """The fast tokenizer stored in a tokenizer or artifact directory (or a hub name, or ``pkg:...``)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(resolve_location(path))
    except (OSError, ValueError) as err:
        raise PipelineError(f"{path}: cannot load tokenizer ({str(err).splitlines()[0]})") from None
