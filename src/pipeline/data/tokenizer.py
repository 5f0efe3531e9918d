"""Loading the pipeline's tokenizer (a prepared directory, an artifact, a hub name or a ``pkg:`` reference).

A local directory is checked before transformers sees it: given a directory without a vocabulary file,
``AutoTokenizer`` does not fail, it builds a default tokenizer of five special tokens that maps every word to
``[UNK]``, and training then runs to the end on nothing. That, and a tokenizer left with only its special
tokens however it was made, is an error here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipeline.core.errors import PipelineError
from pipeline.core.locations import resolve_location

VOCAB_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spm.model", "spiece.model", "sentencepiece.bpe.model",
               "tokenizer.model")
"""Files that hold a vocabulary (fast-tokenizer serialisation, WordPiece, BPE, SentencePiece): one must exist."""
JSON_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def check_tokenizer_dir(path: str | os.PathLike) -> None:
    """Raise a :class:`PipelineError` naming the file unless the local tokenizer directory ``path`` holds a
    vocabulary file and its JSON files are JSON objects."""
    root = Path(path)
    if not any((root / name).is_file() for name in VOCAB_FILES):
        raise PipelineError(
            f"{root}: no tokenizer vocabulary (none of {', '.join(VOCAB_FILES[:2])}, ...): transformers would "
            "silently build a default tokenizer that maps every word to [UNK]"
        )
    for name in JSON_FILES:
        file = root / name
        if not file.is_file():
            continue
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise PipelineError(f"{file}: not valid JSON ({err})") from None
        if not isinstance(data, dict):
            raise PipelineError(f"{file}: must be a JSON object, got {type(data).__name__}")


def check_tokenizer(tokenizer, where: str) -> None:
    """Raise a :class:`PipelineError` naming ``where`` if ``tokenizer`` has no ordinary tokens (a default
    tokenizer) or no padding token (every batch is padded)."""
    specials = set(tokenizer.all_special_ids)
    if len(tokenizer) <= len(specials):
        raise PipelineError(
            f"{where}: the tokenizer holds only its {len(tokenizer)} special tokens (its vocabulary is missing or "
            "empty): every word would be [UNK]"
        )
    if tokenizer.pad_token_id is None:
        raise PipelineError(f"{where}: the tokenizer has no padding token (batches are padded with it)")


def load_tokenizer(path: str | os.PathLike):
    """The fast tokenizer stored in a tokenizer or artifact directory (or a hub name, or ``pkg:...``).

    Raises:
        PipelineError: a local directory without a vocabulary file or with a malformed JSON file, a tokenizer
            transformers cannot load, or one without ordinary tokens or a padding token; naming the file.
    """
    from transformers import AutoTokenizer

    location = resolve_location(path)
    if Path(location).is_dir():
        check_tokenizer_dir(location)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location)
    except (OSError, ValueError) as err:
        raise PipelineError(f"{path}: cannot load tokenizer ({str(err).splitlines()[0]})") from None
    check_tokenizer(tokenizer, str(path))
    return tokenizer
