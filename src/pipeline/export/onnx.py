"""Format ``onnx``: the float32 ONNX graph of a PyTorch artifact (``model.onnx``), run by ONNX Runtime on the CPU.

(This module is named after its format, as the registry requires; ``import onnx`` elsewhere still means the
library, imports being absolute.)
"""

from __future__ import annotations

from pathlib import Path

import torch

from pipeline.export import GRAPH, GraphParams, register
from pipeline.export.graph import export_graph
from pipeline.export.libraries import onnx as onnx_library
from pipeline.export.runtime import load
from pipeline.export.weights import float_state, weight_map
from pipeline.models.formats import Runtime, Tensors
from pipeline.models.structure import position_table


def export_onnx(model: torch.nn.Module, inputs: dict[str, torch.Tensor], head: str, out: Path,
                params: GraphParams) -> dict:
    """Write ``out/model.onnx`` for ``model`` (see :func:`pipeline.export.graph.export_graph`) and name its
    weights (:func:`pipeline.export.weights.weight_map`).

    Returns:
        the ``onnx`` entry of ``pipeline.json``: exporter, opset, inputs, outputs, torch version,
        ``position_table`` (:func:`pipeline.models.structure.position_table`: the longest input the graph
        takes, for the tasks' early checks) and ``weights`` (:func:`pipeline.export.weights.weight_map`: where
        each state-dict tensor is stored).
    """
    described = export_graph(model, inputs, head, out / GRAPH, params)
    described["position_table"] = position_table(model)
    described["weights"] = weight_map(onnx_library.load(str(out / GRAPH)), model.state_dict())
    return described


def artifact_state(root: Path, meta: dict) -> Tensors:
    """The float tensors an ONNX artifact's graph stands for, by PyTorch name (its ``pipeline.json`` map)."""
    return float_state(onnx_library.load(str(root / GRAPH)), meta["onnx"]["weights"])


register(Runtime("onnx", weights=GRAPH, load=load, float_state=artifact_state,
                 kernel="onnxruntime CPUExecutionProvider fp32"), __name__)
