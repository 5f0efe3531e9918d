"""Reading a model artifact of any format: dense or compact weights, a quantization scheme, a runtime format.

An artifact's ``format`` in ``pipeline.json`` names how it is read: ``dense`` (a plain state dict in
``model.safetensors``, :mod:`pipeline.models.store`), a quantization scheme (:data:`pipeline.quantize.SCHEMES`),
or a runtime format (:data:`pipeline.export.RUNTIMES`: a graph for another runtime, e.g. ONNX Runtime, in its own
file instead of ``model.safetensors``). Both registries import only the module of the format asked for, so
reading an artifact loads the code of its own format and no other.

This module sits above :mod:`pipeline.models`, :mod:`pipeline.quantize` and :mod:`pipeline.export`, so that the
model layer never reaches up to the packages holding the formats (``tests/test_layout.py`` checks the layers,
imports made by name included).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from pipeline.core.errors import PipelineError
from pipeline.core.finite import name_variant
from pipeline.export import RUNTIMES
from pipeline.models.build import load_state_
from pipeline.models.formats import Runtime, Scheme
from pipeline.models.store import META, WEIGHTS, build_empty, check_model_files, open_meta, stored_tensors
from pipeline.quantize import SCHEMES


def read_meta(path: str | os.PathLike) -> dict:
    """``pipeline.json`` of an artifact, after checking the artifact as a whole.

    Checked, in this order: what every format shares (:func:`pipeline.models.store.open_meta`); a
    ``quantization`` description (a JSON object) when the format is a quantization scheme; the weights file its
    format names exists (:func:`weights_file`); ``config.json`` and the tokenizer
    (:func:`pipeline.models.store.check_model_files`).

    Raises:
        PipelineError: the first defect, in one line naming the file.
    """
    root = Path(path)
    meta = open_meta(root)
    if meta["format"] != "dense" and runtime_of(meta) is None and not isinstance(meta.get("quantization"), dict):
        raise PipelineError(f"{root / META}: format '{meta['format']}' needs a 'quantization' description "
                            "(a JSON object)")
    if not (weights := weights_file(root, meta)).is_file():
        raise PipelineError(f"{weights}: missing from the artifact")
    check_model_files(root)
    return meta


def runtime_of(meta: dict) -> Runtime | None:
    """The runtime format (e.g. ONNX) an artifact's ``pipeline.json`` names; None for PyTorch weights (``dense``
    or a quantization scheme: a format is a runtime format when :mod:`pipeline.export` has a module of that
    name registering it)."""
    return RUNTIMES.find(str(meta.get("format", "dense")))


def weights_file(root: str | os.PathLike, meta: dict) -> Path:
    """The file holding an artifact's weights: ``model.safetensors``, or its runtime format's file (``model.onnx``)."""
    found = runtime_of(meta)
    return Path(root) / (found.weights if found is not None else WEIGHTS)


def artifact_scheme(root: Path, meta: dict) -> Scheme:
    """The quantization scheme an artifact's ``format`` names; an unknown one is an error naming the file."""
    try:
        return SCHEMES.get(meta["format"])
    except PipelineError as err:
        raise PipelineError(f"{root / META}: format: {err}") from None


def format_devices(root: str | os.PathLike, meta: dict) -> tuple[str, ...]:
    """Device types an artifact's format runs on: every device for dense weights, else its scheme's or runtime's."""
    if (found := runtime_of(meta)) is not None:
        return found.devices
    return ("cpu", "cuda") if meta["format"] == "dense" else artifact_scheme(Path(root), meta).devices


def load_model(path: str | os.PathLike, head: str | None = None) -> tuple[torch.nn.Module, dict]:
    """Load any artifact produced by the pipeline, in eval mode.

    Args:
        path: artifact directory.
        head: expected head (``mlm``, ``classification``, ``qa``); a mismatch is an error.

    Returns:
        ``(model, meta)`` where ``meta`` is the artifact's ``pipeline.json``.

    Raises:
        PipelineError: a defect of the artifact (:func:`read_meta`), another head, an unknown format, weights
            that do not fit the config.
    """
    root = Path(path)
    meta = read_meta(root)
    if head is not None and meta["head"] != head:
        raise PipelineError(f"{root}: holds a '{meta['head']}' model, expected '{head}'")
    if (found := runtime_of(meta)) is not None:  # a graph for another runtime (ONNX): its format's module loads it
        return name_variant(found.load(root, meta).eval(), str(root)), meta
    weights = str(root / WEIGHTS)
    tensors = stored_tensors(root, meta)
    model = build_empty(root, meta["head"])
    if meta["format"] == "dense":
        load_state_(model, tensors, weights)
    else:
        model = artifact_scheme(root, meta).load(model, tensors, meta["quantization"], weights)
    model.eval()
    return name_variant(model, str(root)), meta
