"""Stored weight formats other than dense float: the interfaces quantization schemes and other runtimes implement.

An artifact's ``format`` in ``pipeline.json`` names how it is to be read: ``dense`` (a plain state dict in
``model.safetensors``), a quantization scheme, or a runtime format (a graph for another runtime, e.g. ONNX
Runtime, in its own file). This module only describes them: each scheme is a module of :mod:`pipeline.quantize`
that registers a :class:`Scheme` in :data:`pipeline.quantize.SCHEMES`, each runtime format a module of
:mod:`pipeline.export` that registers a :class:`Runtime` in :data:`pipeline.export.RUNTIMES`, and
:mod:`pipeline.artifacts` (above all three) reads an artifact by its format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch

from pipeline.core.errors import PipelineError

Tensors = dict[str, torch.Tensor]


class Kernel(NamedTuple):
    """Which kernel runs a format on a device: ``name`` (e.g. ``torchao Int8WeightOnlyConfig``), or None when
    nothing runs it fast there (then the variant is evaluated for accuracy and size only), and ``reason``: one
    line saying why this kernel, or why none."""

    name: str | None
    reason: str


@dataclass
class Prepared:
    """A model made ready for timing on its device by a scheme's ``prepare`` (:attr:`Scheme.prepare`)."""

    model: torch.nn.Module
    """The model that runs the kernel (the one passed in, converted in place, on the device)."""
    kernel: str | None
    """The kernel's name (:class:`Kernel`; None: none, the model as loaded)."""
    fast_linears: int | None
    """Linear layers that run the kernel (None: not counted, e.g. a graph for another runtime)."""
    slow_linears: list[str]
    """Module paths of the Linears that do not (shapes the kernel refuses), each still a plain matmul."""
    dtype: str
    """The activations' dtype (``float32``, ``bfloat16``)."""
    compile: bool = False
    """True when the kernel is fast only under ``torch.compile`` (the caller compiles and times it apart)."""


def no_kernel(device: torch.device) -> Kernel:
    """The default of a scheme that registers no kernel: accuracy and size only, everywhere."""
    return Kernel(None, "no fast kernel is registered for this scheme: accuracy and size only")


def no_prepare(model: torch.nn.Module, device: torch.device, description: dict) -> Prepared:
    """The default ``prepare``: never called, since :func:`no_kernel` names no kernel."""
    raise PipelineError("this scheme has no fast kernel to prepare (its kernel_for names none)")


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
    """Device types the loaded model runs on (a model of torch.ao dynamic int8 Linears: the CPU only, unless
    ``prepare`` rebuilds it for another device)."""
    kernel_for: Callable[[torch.device], Kernel] = no_kernel
    """``device -> Kernel``: which kernel runs the scheme there, or None and the reason (a scheme whose weights
    are dequantized on load has no speed of its own on that device: never time the dequantized model)."""
    prepare: Callable[[torch.nn.Module, torch.device, dict], Prepared] = no_prepare
    """``(model from load, device, the artifact's quantization description) -> Prepared``: the model running
    ``kernel_for(device)``'s kernel, built from the stored tensors; a PipelineError when that names none."""


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
    kernel: str = "onnxruntime CPUExecutionProvider"
    """The kernel that runs the graph (recorded by the evaluate stage next to its timings)."""
