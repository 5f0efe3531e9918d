"""A deterministic WordPiece tokenizer for the synthetic data (the pipeline's offline default).

The vocabulary is written, not trained: ``tokenizers``' trainers are not guaranteed to give the same
vocabulary twice, and DVC needs the ``prepare`` stage to give the same bytes on every run. Every word
the synthetic generators emit is a whole token; single characters and their ``##`` continuations
follow, so text outside that domain still tokenizes into pieces instead of ``[UNK]``.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from pathlib import Path

from transformers import BertTokenizerFast, PreTrainedTokenizerFast

from pipeline.data import synthetic

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
"""Special tokens, in id order: ``[PAD]`` must be id 0 (the models' ``pad_token_id``)."""

MODEL_MAX_LENGTH = 512
VOCAB_FILE = "vocab.txt"


def _normalize(word: str) -> str:
    """``word`` lowercased and stripped; raises ``ValueError`` when it cannot be a single token.

    Lowercased because the tokenizer lowercases its input: an uppercase entry could never match.
    """
    token = word.strip().lower()
    if not token or any(ch.isspace() for ch in token):
        raise ValueError(f"vocabulary entry {word!r} must be one non-empty word without whitespace")
    return token


def vocabulary(extra_words: Iterable[str] = ()) -> list[str]:
    """The vocabulary in id order.

    Args:
        extra_words: words to add to the generators' words (default none); lowercased.

    Returns:
        ``SPECIAL_TOKENS``, then the sorted union of :func:`synthetic.words` and ``extra_words``, then
        the ascii letters, digits and punctuation marks, then ``##`` forms of letters and digits (each
        entry once, at its first position).
    """
    words = sorted({_normalize(w) for w in (*synthetic.words(), *extra_words)} - set(SPECIAL_TOKENS))
    chars = string.ascii_lowercase + string.digits
    # Punctuation needs no "##" form: the BERT pre-tokenizer always splits it off as its own word.
    fallback = [*chars, *string.punctuation, *(f"##{c}" for c in chars)]
    # dict keeps insertion order: de-duplicates single-character words (e.g. "i", ".") in place.
    return list(dict.fromkeys([*SPECIAL_TOKENS, *words, *fallback]))


def build_tokenizer(out_dir: str | Path, extra_words: Iterable[str] = ()) -> PreTrainedTokenizerFast:
    """Write the deterministic tokenizer to ``out_dir`` and return it.

    Writes ``vocab.txt`` (one token per line, ids in line order) and the files of
    ``save_pretrained`` (``tokenizer.json``, ``tokenizer_config.json``); two calls with equal
    arguments write byte-identical files.

    Args:
        out_dir: directory to write to (created if missing).
        extra_words: words to add to the vocabulary besides the generators' words (default none).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokens = vocabulary(extra_words)
    vocab_file = out / VOCAB_FILE
    # newline="\n": the same bytes on every platform.
    with open(vocab_file, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("".join(f"{token}\n" for token in tokens))
    # transformers 5 builds the WordPiece model from the ``vocab`` mapping; a bare ``vocab_file``
    # argument is ignored there (the tokenizer would hold only the special tokens).
    tokenizer = BertTokenizerFast(
        vocab={token: i for i, token in enumerate(tokens)},
        do_lower_case=True,
        model_max_length=MODEL_MAX_LENGTH,
    )
    tokenizer.save_pretrained(str(out))
    return tokenizer


def check_tokenizer(spec: str) -> None:
    """Load the tokenizer ``prepare.tokenizer`` names (nothing to load for ``synthetic``), so that a bad one is
    refused before any data is fetched.

    Raises:
        PipelineError: a tokenizer that cannot be loaded (naming ``spec``).
    """
    if spec != "synthetic":
        from pipeline.data.tokenizer import load_tokenizer

        load_tokenizer(spec)


def save_tokenizer(spec: str, out_dir: str | Path) -> None:
    """Write the tokenizer ``prepare.tokenizer`` names into ``out_dir``: this module's deterministic vocabulary
    for ``synthetic``, else the tokenizer :func:`pipeline.data.tokenizer.load_tokenizer` finds (a hub name, a
    local directory, ``pkg:<package>/<dir>``).

    Raises:
        PipelineError: a tokenizer that cannot be loaded (naming ``spec``).
    """
    if spec == "synthetic":
        build_tokenizer(out_dir)
    else:
        from pipeline.data.tokenizer import load_tokenizer

        load_tokenizer(spec).save_pretrained(out_dir)
