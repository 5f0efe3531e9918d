"""Model artifacts: SafeTensors model directories with provenance.

An artifact directory holds ``model.safetensors``, ``config.json``, the tokenizer files and
``pipeline.json`` (stage, method, format, parent hashes, resolved params, what was done). Dense artifacts
load with plain ``transformers``; physically pruned, compactly stored and quantized ones need
:func:`load_model`. A format's reader (a quantization scheme, the compact sparse storage, a runtime format such
as ONNX, whose artifact holds ``model.onnx`` instead of ``model.safetensors``) is imported only when an artifact
in that format is read.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from pipeline.core.errors import PipelineError
from pipeline.core.files import atomic_dir, write_json
from pipeline.core.runtime import is_main
from pipeline.models import formats
from pipeline.models.build import empty_model, load_state_

META = "pipeline.json"
WEIGHTS = "model.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def read_meta(path: str | os.PathLike) -> dict:
    """``pipeline.json`` of an artifact, checking the artifact's files are present (the weights file is the one
    its format names: :func:`weights_file`)."""
    root = Path(path)
    if not root.is_dir():
        raise PipelineError(f"{root}: artifact directory not found (run the upstream stage first)")
    for name in (META, "config.json"):
        if not (root / name).is_file():
            raise PipelineError(f"{root / name}: missing from the artifact")
    try:
        meta = json.loads((root / META).read_text())
    except json.JSONDecodeError as err:
        raise PipelineError(f"{root / META}: not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise PipelineError(f"{root / META}: not a JSON object")
    if not weights_file(root, meta).is_file():
        raise PipelineError(f"{weights_file(root, meta)}: missing from the artifact")
    return meta


def runtime_of(meta: dict) -> formats.Runtime | None:
    """The runtime format (e.g. ONNX) an artifact's ``pipeline.json`` names; None for PyTorch weights."""
    return formats.runtime(str(meta.get("format", "dense")))


def weights_file(root: str | os.PathLike, meta: dict) -> Path:
    """The file holding an artifact's weights: ``model.safetensors``, or its runtime format's file (``model.onnx``)."""
    found = runtime_of(meta)
    return Path(root) / (found.weights if found is not None else WEIGHTS)


def read_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of a SafeTensors file; a truncated or corrupt file is a :class:`PipelineError`."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise PipelineError(f"{path}: corrupt or unreadable SafeTensors file ({err})") from None


def tensor_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata stored in a SafeTensors header."""
    try:
        with safe_open(str(path), "pt") as fh:
            return fh.metadata() or {}
    except (SafetensorError, OSError) as err:
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
    """
    missing = {"stage", "head", "format"} - set(meta)
    if missing:
        raise ValueError(f"meta lacks {sorted(missing)}")
    if tensors is None:
        # save_pretrained drops tied duplicates (MLM decoder) so plain transformers can load it.
        model.save_pretrained(out, safe_serialization=True)
    else:
        model.config.save_pretrained(out)
        contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
        save_file(contiguous, str(out / WEIGHTS), metadata={"format": "pt", "scheme": meta["format"]})
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


def load_model(path: str | os.PathLike, head: str | None = None) -> tuple[torch.nn.Module, dict]:
    """Load any artifact produced by the pipeline, in eval mode.

    Args:
        path: artifact directory.
        head: expected head (``mlm``, ``classification``, ``qa``); a mismatch is an error.

    Returns:
        ``(model, meta)`` where ``meta`` is the artifact's ``pipeline.json``.
    """
    root = Path(path)
    meta = read_meta(root)
    if head is not None and meta["head"] != head:
        raise PipelineError(f"{root}: holds a '{meta['head']}' model, expected '{head}'")
    if (found := runtime_of(meta)) is not None:  # a graph for another runtime (ONNX): its format's module loads it
        return found.load(root, meta).eval(), meta
    weights = str(root / WEIGHTS)
    tensors = stored_tensors(root, meta)
    model = empty_model(root, meta["head"])
    if meta["format"] == "dense":
        load_state_(model, tensors, weights)
    else:
        model = artifact_scheme(root, meta).load(model, tensors, meta["quantization"], weights)
    model.eval()
    return model, meta


def stored_tensors(root: Path, meta: dict) -> dict[str, torch.Tensor]:
    """The tensors of ``root``'s weights file, compact sparse matrices expanded to dense ones."""
    tensors = read_tensors(root / WEIGHTS)
    if meta.get("storage") == "compact":
        # Imported here, by name: only the readers of compact artifacts load (and depend on) that code.
        compact = importlib.import_module("pipeline.models.compact")
        tensors = compact.expand(tensors, str(root / WEIGHTS))
    return tensors


def artifact_scheme(root: Path, meta: dict) -> formats.Scheme:
    """The quantization scheme an artifact's ``format`` names; an unknown one is an error naming the file."""
    try:
        return formats.scheme(meta["format"])
    except PipelineError as err:
        raise PipelineError(f"{root / META}: format: {err}") from None


def format_devices(root: str | os.PathLike, meta: dict) -> tuple[str, ...]:
    """Device types an artifact's format runs on: every device for dense weights, else its scheme's or runtime's."""
    if (found := runtime_of(meta)) is not None:
        return found.devices
    return ("cpu", "cuda") if meta["format"] == "dense" else artifact_scheme(Path(root), meta).devices
