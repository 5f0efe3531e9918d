"""Stored weight formats other than dense float: the interfaces quantization schemes and other runtimes implement.

An artifact's ``format`` in ``pipeline.json`` names how it is to be read: ``dense`` (a plain state dict in
``model.safetensors``), a quantization scheme, or a runtime format (a graph for another runtime, e.g. ONNX
Runtime, in its own file). Each scheme is a module of :mod:`pipeline.quantize` that registers a :class:`Scheme`
here, each runtime format a module of :mod:`pipeline.export` that registers a :class:`Runtime`; :func:`scheme`
and :func:`runtime` import only the module of the format asked for, so reading an artifact loads the code of
its own format and no other.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pipeline.core.registry import Registry

Tensors = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Scheme:
    """One quantization scheme and what callers need to know about it."""

    name: str
    params: type
    """Its knobs, read from ``quantize.<name>`` (a dataclass, possibly without fields)."""
    quantize: Callable[[torch.nn.Module, Any], tuple[Tensors, dict]]
    """``(dense float model, params) -> (tensors to store, JSON-able description)``; the model is not changed."""
    load: Callable[[torch.nn.Module, Tensors, dict, str], torch.nn.Module]
    """``(freshly built float model, stored tensors, description, file name for errors) -> runnable model``."""
    float_state: Callable[[Tensors, dict, str], Tensors]
    """``(stored tensors, description, file name) -> state dict of the float weights they stand for``."""
    devices: tuple[str, ...] = ("cpu", "cuda")
    """Device types the loaded model runs on (dynamic int8 kernels are CPU-only)."""
    kernels: bool = False
    """True when the loaded model runs low-precision kernels (a possible speed-up); False when weights are
    dequantized or cast on load (the scheme then changes size and accuracy only)."""


SCHEMES: Registry[Scheme] = Registry("pipeline.quantize", "quantization scheme")
"""Registered by the modules of :mod:`pipeline.quantize`, one scheme per module."""


def scheme(name: str) -> Scheme:
    """The scheme ``name`` (imports its module only); unknown names are a :class:`PipelineError`."""
    return SCHEMES.get(name)


@dataclass(frozen=True)
class Runtime:
    """A format run by another runtime than PyTorch: the artifact holds that runtime's file instead of
    ``model.safetensors``, and loading it gives a module whose call returns the transformers outputs."""

    name: str
    weights: str
    """The artifact's file holding the graph and its weights, e.g. ``model.onnx``."""
    load: Callable[[Path, dict], torch.nn.Module]
    """``(artifact dir, pipeline.json) -> module`` called like the transformers model (``.logits``, or
    ``.start_logits``/``.end_logits``), in eval mode."""
    float_state: Callable[[Path, dict], Tensors]
    """``(artifact dir, pipeline.json) -> {state-dict name: float tensor}``: the weights the file stands for,
    named as in the PyTorch model it was made from (quantized weights dequantized), for the model facts."""
    devices: tuple[str, ...] = ("cpu",)
    """Device types the loaded module runs on."""


RUNTIMES: Registry[Runtime] = Registry("pipeline.export", "runtime format")
"""Registered by the format modules of :mod:`pipeline.export` (``onnx``, ``onnx_int8``)."""


def runtime(name: str) -> Runtime | None:
    """The runtime format ``name`` (importing its module only), or None when ``name`` is read by PyTorch
    (``dense`` or a quantization scheme): a format is a runtime format when :mod:`pipeline.export` has a
    module of that name."""
    if name == "dense" or not name.isidentifier() or importlib.util.find_spec(RUNTIMES.package) is None:
        return None
    if importlib.util.find_spec(f"{RUNTIMES.package}.{name}") is None:
        return None
    return RUNTIMES.get(name)
