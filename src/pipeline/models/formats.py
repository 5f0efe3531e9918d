"""Stored weight formats other than dense float: the interface quantization schemes implement.

An artifact's ``format`` in ``pipeline.json`` names how ``model.safetensors`` is to be read: ``dense`` (a plain
state dict) or a quantization scheme. Each scheme is a module of :mod:`pipeline.quantize` that registers a
:class:`Scheme` here; :func:`scheme` imports only the module of the format asked for, so reading an artifact
loads the code of its own format and no other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
