"""Deployment: a PyTorch artifact exported to ONNX and run with ONNX Runtime (the ``export`` stage).

- :mod:`.graph`: ``torch.onnx.export`` of a task model with dynamic batch and sequence axes, debug metadata
  removed so the file depends only on the model.
- :mod:`.weights`: the graph's initializers mapped back to the PyTorch state-dict names (int8 dequantized), so
  the model facts of an ONNX artifact are counted like those of any other.
- :mod:`.runtime`: :class:`~pipeline.export.runtime.OrtModel`, a module backed by an ONNX Runtime CPU session
  whose call returns the transformers outputs, so the task code scores it unchanged.
- :mod:`.onnx` and :mod:`.onnx_int8`: the two artifact formats (float32 graph; ONNX Runtime dynamic int8 of it),
  registered in :data:`RUNTIMES`, so :func:`pipeline.artifacts.load_model` loads an artifact of either format
  by importing that module by name.
- :mod:`.artifact`: writing and checking an ONNX artifact (``model.onnx``, ``config.json``, tokenizer files,
  ``pipeline.json``).

The ONNX libraries are the optional ``onnx`` extra (:mod:`.libraries` imports them); this package's
``__init__`` only holds the params, so reading ``params.yaml`` never needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.core.registry import Registry
from pipeline.models.formats import Runtime


RUNTIMES: Registry[Runtime] = Registry("pipeline.export", "runtime format")
"""Every runtime format by name (an artifact's ``format``: ``onnx``, ``onnx_int8``), one per module here."""

GRAPH = "model.onnx"
"""The file of an ONNX artifact that holds the graph and its weights (in place of ``model.safetensors``)."""

# Opsets each exporter writes (torch 2.13: torch.onnx._constants, ONNX_MAX_OPSET and
# ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET; the dynamo exporter starts at 18).
OPSETS = {"dynamo": (18, 23), "torchscript": (17, 20)}


@dataclass
class GraphParams:
    """How the PyTorch model is exported (``export.onnx``)."""

    exporter: Literal["dynamo", "torchscript"] = "dynamo"
    """``dynamo``: the torch.export-based exporter (torch's default since 2.9); ``torchscript``: the legacy
    tracer (deprecated by torch, kept as a fallback for models torch.export cannot capture)."""
    opset: int = 18
    """ONNX opset of the graph: 18-23 with ``dynamo``, 17-20 with ``torchscript`` (17 is the first with a
    LayerNormalization operator)."""

    def __post_init__(self):
        low, high = OPSETS[self.exporter]
        if not low <= self.opset <= high:
            raise ValueError(f"opset must be in [{low}, {high}] with the {self.exporter} exporter, got {self.opset}")


@dataclass
class Int8Params:
    """ONNX Runtime dynamic int8 quantization (``export.int8``; ``onnxruntime.quantization.quantize_dynamic``)."""

    per_channel: bool = False
    """One scale per output column of each MatMul weight instead of one per tensor."""
    reduce_range: Literal[True, False, "auto"] = True
    """7-bit weights: ONNX Runtime's u8s8 int8 kernels can saturate on CPUs without VNNI (AVX2, AVX-512 without
    VNNI; onnxruntime issue 6004: a ModernBERT graph's logit error 0.283 with ``false``, 0.021 with ``true``).
    ``true`` (default, safe on every CPU); ``auto``: ``false`` where the exporting CPU has VNNI
    (``avx512_vnni``/``avx_vnni`` in ``/proc/cpuinfo``), else ``true``; the choice is recorded in
    ``pipeline.json``. A graph exported with ``false`` on a VNNI machine may saturate when run on one without."""
    max_relative_error: float = 0.1
    """The int8 graph is refused when its largest logit error exceeds this fraction of the largest |logit| of
    the PyTorch source on the same batches (saturation gives errors of that order, a working int8 graph
    about 1%)."""

    def __post_init__(self):
        if not (isinstance(self.reduce_range, bool) or self.reduce_range == "auto"):
            raise ValueError(f"reduce_range must be true, false or auto, got {self.reduce_range!r}")
        if not 0 < self.max_relative_error:
            raise ValueError(f"max_relative_error must be > 0, got {self.max_relative_error}")


def register(entry: Runtime, module: str) -> Runtime:
    """Register a runtime format; call from its own module as ``register(Runtime(...), __name__)``."""
    return RUNTIMES.add(entry.name, entry, module)
