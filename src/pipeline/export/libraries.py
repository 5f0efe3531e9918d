"""The ONNX libraries of the optional ``onnx`` extra, imported in one place: a missing one is one clear line.

``onnx`` (the graph format), ``onnxruntime`` (the CPU runtime and its quantization tool) and ``onnxscript``
(which torch's dynamo exporter translates with) come from ``pip install -e '.[onnx]'``.
"""

from __future__ import annotations

from pipeline.core.errors import PipelineError

try:
    import onnx
    import onnxruntime
    import onnxruntime.quantization as ort_quantization
    import onnxscript  # noqa: F401  (torch's dynamo exporter imports it; checked here for the message)
except ModuleNotFoundError as err:
    raise PipelineError(
        f"ONNX export and runtime need the 'onnx' extra ({err.name} is not installed): pip install -e '.[onnx]'"
    ) from None

__all__ = ["onnx", "onnxruntime", "ort_quantization"]
