"""PyTorch -> ONNX: a task model exported with dynamic batch and sequence axes.

``torch.onnx.export`` does the work (its dynamo exporter by default: ``torch.export`` capture, onnxscript
translation and graph optimization; or the legacy TorchScript tracer). Measured with torch 2.13 and
transformers 5.24 on CPU: both exporters handle dense and physically pruned BERT classification and QA models
(per-layer head and FFN widths) with dynamic batch and sequence axes, and ONNX Runtime reproduces the PyTorch
logits within 2e-7, padded batches included. The dynamo exporter is the default: the tracer is deprecated
(a DeprecationWarning in torch 2.13), though much faster (a tiny BERT: 17-24 s against 0.85 s on the shared
2-core machine under load 7, almost all of it in ``torch.export``). What is kept of the exporter's output is
the graph alone: the per-node debug metadata (stack traces with local file paths, FX node text) is removed, so
the file depends on the weights and the library versions only (two exports of one model give the same bytes,
tested).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

from pipeline.core.errors import PipelineError
from pipeline.export import OPSETS, GraphParams
from pipeline.export.libraries import onnx

OUTPUTS = {"classification": ("logits",), "qa": ("start_logits", "end_logits")}
"""The graph's outputs per model head, named as the transformers output fields they stand for."""


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' progress lines, tracer warnings and torchvision notes (nothing actionable)."""
    log = logging.getLogger("torch.onnx")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        log.setLevel(level)


def _export(model: torch.nn.Module, inputs: dict[str, torch.Tensor], outputs: tuple[str, ...],
            params: GraphParams) -> onnx.ModelProto:
    """The exporter's graph for ``model`` called with keyword ``inputs``; axes 0 and 1 of every input dynamic."""
    names = list(inputs)
    common = {"kwargs": inputs, "input_names": names, "output_names": list(outputs),
              "opset_version": params.opset, "dynamo": params.exporter == "dynamo"}
    with _quiet():
        if params.exporter == "dynamo":
            batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
            program = torch.onnx.export(model, (), None, **common, external_data=False, verbose=False,
                                        dynamic_shapes={k: {0: batch, 1: seq} for k in names})
            return program.model_proto
        buffer = io.BytesIO()
        torch.onnx.export(model, (), buffer, **common, dynamic_axes={k: {0: "batch", 1: "seq"} for k in names})
        return onnx.load_from_string(buffer.getvalue())


def strip_debug(proto: onnx.ModelProto) -> None:
    """Remove per-node metadata and doc strings in place (the graph and its weights are unchanged)."""
    for node in proto.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    proto.graph.doc_string = ""


def export_graph(model: torch.nn.Module, inputs: dict[str, torch.Tensor], head: str, path: str | Path,
                 params: GraphParams) -> dict:
    """Write ``model`` as a single-file ONNX graph (weights inside; protobuf's limit makes that 2 GB at most).

    Args:
        model: a float32 task model on the CPU, in eval mode.
        inputs: example keyword inputs, e.g. ``input_ids``, ``attention_mask``, ``token_type_ids``, each
            ``(B, T)`` int64 with ``B, T >= 2`` (torch.export fixes a dimension whose example size is 1); they
            become the graph's inputs, in this order, with axes 0 (``batch``) and 1 (``seq``) dynamic.
        head: ``classification`` (output ``logits`` ``(B, C)``) or ``qa`` (``start_logits``, ``end_logits``
            ``(B, T)``).
        path: the ``.onnx`` file to write.
        params: exporter and opset.

    Returns:
        what was exported, for ``pipeline.json``: ``exporter``, ``opset``, ``inputs``, ``outputs``, ``torch``.

    Raises:
        PipelineError: a head without graph outputs here (e.g. ``mlm``), example inputs with a dimension < 2, or
            the exporter failed (its first line, naming the other exporter to try).
    """
    if head not in OUTPUTS:
        raise PipelineError(f"a '{head}' model cannot be exported (heads: {', '.join(OUTPUTS)})")
    small = {k: tuple(v.shape) for k, v in inputs.items() if v.dim() != 2 or min(v.shape) < 2}
    if small:
        raise PipelineError(f"example inputs must be (batch >= 2, seq >= 2), got {small}")
    try:
        proto = _export(model, inputs, OUTPUTS[head], params)
    except torch.onnx.errors.OnnxExporterError as err:  # the model uses something this exporter cannot capture
        other = next(e for e in OPSETS if e != params.exporter)
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        raise PipelineError(f"torch.onnx.export ({params.exporter} exporter) failed: {first} "
                            f"(export.onnx.exporter: {other} may work)") from None
    strip_debug(proto)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return {"exporter": params.exporter, "opset": params.opset, "inputs": list(inputs), "outputs": list(OUTPUTS[head]),
            "torch": torch.__version__.split("+")[0]}
