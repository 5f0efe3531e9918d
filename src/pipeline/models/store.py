"""Model artifacts: SafeTensors model directories with provenance.

An artifact directory holds ``model.safetensors``, ``config.json``, the tokenizer files and
``pipeline.json`` (stage, method, format, parent hashes, resolved params, what was done). Dense artifacts
load with plain ``transformers`` (physically pruned ones with ``trust_remote_code=True``: they carry their
modeling file); compactly stored and quantized ones need :func:`pipeline.artifacts.load_model`, which never runs
code from an artifact.

This module writes artifacts and reads what every format shares (``pipeline.json``, ``config.json``, the
tokenizer, a SafeTensors file, the compact sparse storage). Reading by format (a quantization scheme of
:mod:`pipeline.quantize`, a runtime format of :mod:`pipeline.export` such as ONNX, whose artifact holds
``model.onnx`` instead of ``model.safetensors``) is :mod:`pipeline.artifacts`, above both: the model layer never
reaches up to the packages that hold the formats.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from pipeline.core.errors import PipelineError
from pipeline.core.files import atomic_dir, write_json
from pipeline.core.runtime import is_main
from pipeline.data.tokenizer import load_tokenizer
from pipeline.models import families, remote_code
from pipeline.models.build import HEADS, empty_model

META = "pipeline.json"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
try:  # transformers 5 configs are strict dataclasses: a field of the wrong type raises this
    from huggingface_hub.errors import StrictDataclassError
except ImportError:  # pragma: no cover (older huggingface_hub)
    StrictDataclassError = ValueError
CONFIG_ERRORS = (StrictDataclassError, TypeError, ValueError, AssertionError, RuntimeError)
"""What a config class or a model constructor raises on a ``config.json`` with wrong values (the constructors
do not validate their arguments)."""
# The fast tokenizer's files and the vocabulary files of WordPiece, byte-level BPE and SentencePiece ones.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "vocab.json",
                   "merges.txt", "spm.model", "sentencepiece.bpe.model")


def open_meta(path: str | os.PathLike) -> dict:
    """``pipeline.json`` of an artifact, with the checks every format shares: the directory, ``config.json`` and
    ``pipeline.json`` exist; ``pipeline.json`` is a JSON object with a string ``stage`` and ``format`` and a known
    ``head`` (:func:`check_meta`). The format's own checks are :func:`pipeline.artifacts.read_meta`'s.

    Raises:
        PipelineError: the first defect, in one line naming the file.
    """
    root = Path(path)
    if not root.is_dir():
        raise PipelineError(f"{root}: artifact directory not found (run the upstream stage first)")
    for name in (META, CONFIG):
        if not (root / name).is_file():
            raise PipelineError(f"{root / name}: missing from the artifact")
    meta = _json_object(root / META)
    check_meta(meta, root / META)
    return meta


def check_model_files(root: Path) -> None:
    """``config.json`` is a JSON object with a ``model_type`` and a positive integer ``vocab_size``
    (:func:`check_config`), and the tokenizer files load as a real tokenizer
    (:func:`pipeline.data.tokenizer.load_tokenizer`) no larger than ``vocab_size`` (it may be smaller: padded
    embedding matrices).

    Raises:
        PipelineError: the first defect, in one line naming the file.
    """
    config = _json_object(root / CONFIG)
    check_config(config, root / CONFIG)
    tokens = len(load_tokenizer(root))
    if tokens > config["vocab_size"]:
        raise PipelineError(
            f"{root / CONFIG}: vocab_size {config['vocab_size']} is smaller than the artifact's tokenizer "
            f"({tokens} tokens): token ids past the embedding matrix"
        )


def _json_object(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PipelineError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise PipelineError(f"{path}: must be a JSON object, got {type(data).__name__}")
    return data


def check_meta(meta: dict, where: Path) -> None:
    """The keys every reader of ``pipeline.json`` relies on, with their types."""
    for key in ("stage", "format"):
        if not isinstance(meta.get(key), str) or not meta[key]:
            raise PipelineError(f"{where}: '{key}' must be a non-empty string, got {meta.get(key)!r}")
    if meta.get("head") not in HEADS:
        raise PipelineError(f"{where}: 'head' must be one of {', '.join(HEADS)}, got {meta.get('head')!r}")


def check_config(config: dict, where: Path) -> None:
    """What the loaders read from ``config.json`` before transformers does: the family and the vocabulary size."""
    if not isinstance(config.get("model_type"), str) or not config["model_type"]:
        raise PipelineError(f"{where}: 'model_type' must be a non-empty string, got {config.get('model_type')!r}")
    vocab = config.get("vocab_size")
    if not isinstance(vocab, int) or isinstance(vocab, bool) or vocab < 1:
        raise PipelineError(f"{where}: 'vocab_size' must be a positive integer, got {vocab!r}")
    try:
        config_class = families.family(config["model_type"]).config_class
    except PipelineError as err:  # an unsupported family
        raise PipelineError(f"{where}: {err}") from None
    try:  # transformers' own field types (strict in v5); the model built later re-reads the same file
        config_class.from_dict(config)
    except CONFIG_ERRORS as err:
        raise PipelineError(f"{where}: not a valid {config['model_type']} config ({_first_line(err)})") from None


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return (lines[-1] if lines else type(err).__name__)[:300]


def read_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of a SafeTensors file; a truncated or corrupt file is a :class:`PipelineError`."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise PipelineError(f"{path}: corrupt or unreadable SafeTensors file ({err})") from None


def copy_tokenizer(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy the tokenizer files of ``src`` (a tokenizer or artifact dir) into ``dst``."""
    src, dst = Path(src), Path(dst)
    found = [name for name in TOKENIZER_FILES if (src / name).is_file()]
    if not found:
        raise PipelineError(f"{src}: no tokenizer files found")
    for name in found:
        shutil.copyfile(src / name, dst / name)


def save_model(
    out: Path,
    model: torch.nn.Module,
    tokenizer_src: str | os.PathLike,
    meta: dict,
    tensors: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write a complete artifact into ``out`` (normally the directory yielded by
    :func:`pipeline.core.files.atomic_dir`).

    Args:
        out: target directory (exists, empty).
        model: the model; its ``config`` is saved as ``config.json``.
        tokenizer_src: directory whose tokenizer files are copied alongside.
        meta: provenance for ``pipeline.json``; must contain ``stage``, ``head`` and ``format``.
        tensors: the exact tensors to store instead of the state dict, for quantized formats and compact
            storage (:func:`pipeline.models.compact.compact_model`, which also sets ``meta["storage"]``).

    A structurally pruned model stored as a plain state dict also gets ``modeling_pruned.py`` and a
    ``config.json`` ``auto_map`` naming it (:mod:`pipeline.models.remote_code`), so plain transformers loads
    it with ``trust_remote_code=True``; other artifacts carry no ``auto_map``.
    """
    missing = {"stage", "head", "format"} - set(meta)
    if missing:
        raise ValueError(f"meta lacks {sorted(missing)}")
    with remote_code.attached(model.config, plain_weights=tensors is None) as code:
        if tensors is None:
            # save_pretrained drops tied duplicates (MLM decoder) so plain transformers can load it.
            model.save_pretrained(out, safe_serialization=True)
        else:
            model.config.save_pretrained(out)
            contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
            # One metadata key only: safetensors writes a mapping's keys in a random order per process, which
            # would make equal artifacts differ in bytes (the format is in pipeline.json anyway).
            save_file(contiguous, str(out / WEIGHTS), metadata={"format": "pt"})
    remote_code.write_code(out, code)
    copy_tokenizer(tokenizer_src, out)
    write_json(out / META, meta)


def write_artifact(out: str | os.PathLike, model: torch.nn.Module, tokenizer_src: str | os.PathLike, meta: dict,
                   tensors: dict[str, torch.Tensor] | None = None) -> None:
    """Write a complete artifact to ``out`` atomically (:func:`save_model` into a temporary directory that
    replaces ``out`` on success); only the main process writes, other ranks of a multi-process run return."""
    if not is_main():
        return
    with atomic_dir(out) as tmp:
        save_model(tmp, model.cpu(), tokenizer_src, meta, tensors)


def build_empty(root: Path, head: str) -> torch.nn.Module:
    """:func:`pipeline.models.build.empty_model` of the artifact; a ``config.json`` that transformers accepts
    but cannot build a model from (a size that is not a number, an impossible combination) is an error naming
    the file, not a traceback from deep inside the model's constructor."""
    try:
        return empty_model(root, head)
    except PipelineError:
        raise
    except CONFIG_ERRORS as err:
        raise PipelineError(f"{root / CONFIG}: does not describe a buildable model ({_first_line(err)})") from None


def stored_tensors(root: Path, meta: dict) -> dict[str, torch.Tensor]:
    """The tensors of ``root``'s weights file, compact sparse matrices expanded to dense ones."""
    tensors = read_tensors(root / WEIGHTS)
    if meta.get("storage") == "compact":
        # Imported here, by name: only the readers of compact artifacts load (and depend on) that code.
        compact = importlib.import_module("pipeline.models.compact")
        tensors = compact.expand(tensors, str(root / WEIGHTS))
    return tensors
