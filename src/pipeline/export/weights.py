"""An ONNX graph's weights under their PyTorch names: the initializers mapped back to the state dict.

The exporters rename and reshape weights: the dynamo exporter's optimizer stores a Linear weight transposed as
``val_<n>`` (the MatMul operand ``(in, out)``) and keeps one initializer for several equal tensors (zero
biases, unit LayerNorm scales); the TorchScript tracer names them ``onnx::MatMul_<n>``. ONNX Runtime's dynamic
quantization then replaces an initializer ``X`` by ``X_quantized`` (int8 or uint8), ``X_scale`` and
``X_zero_point`` (``X_Transposed_quantized``... for a ``Gemm`` operand it transposes); and an all-zero bias
can vanish altogether (the optimizer drops an addition of zeros).
:func:`weight_map`, run at export time while the PyTorch model is at hand, finds each state-dict tensor among
the initializers by value (as stored or transposed), or records it as zeros; the map is kept in the artifact's
``pipeline.json`` and :func:`float_state` uses it to give back ``{state-dict name: float tensor}`` from the
graph alone, so the model facts (parameters per component and layer, heads, sparsity) of an ONNX artifact are
counted like those of any other.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from pipeline.core.errors import PipelineError
from pipeline.export.libraries import onnx

QUANTIZED, SCALE, ZERO_POINT = "_quantized", "_scale", "_zero_point"
"""Suffixes ONNX Runtime's quantization tool gives an initializer's int8 values, scale and zero point."""
TRANSPOSED = "_Transposed"
"""Inserted before those suffixes when the tool stored the transpose (a ``Gemm`` weight used with ``transB``)."""


def initializers(proto: onnx.ModelProto) -> dict[str, np.ndarray]:
    """``{name: array}`` of every initializer of the graph."""
    return {init.name: onnx.numpy_helper.to_array(init) for init in proto.graph.initializer}


def _key(array: np.ndarray) -> tuple:
    return array.dtype.str, array.shape, hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def weight_map(proto: onnx.ModelProto, state: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Where each float tensor of ``state`` is stored in the graph.

    Args:
        proto: the exported float32 graph.
        state: the PyTorch model's state dict (integer buffers such as ``position_ids`` are skipped).

    Returns:
        ``{state-dict name: entry}``, an entry being ``{"initializer": name, "transposed": bool}``
        (``transposed``: the initializer holds the tensor's transpose, a 2-D weight stored as the MatMul
        operand ``(in, out)``) or ``{"zeros": shape}`` for an all-zero tensor the graph does without.

    Raises:
        PipelineError: a float tensor with a non-zero value found nowhere in the graph, as stored or
            transposed (the exporter folded it into something else; the facts could not be counted).
    """
    found: dict[tuple, dict] = {}
    for name, array in initializers(proto).items():
        if array.dtype.kind == "f":
            found.setdefault(_key(array), {"initializer": name, "transposed": False})
            if array.ndim == 2:
                found.setdefault(_key(array.T), {"initializer": name, "transposed": True})
    out, missing = {}, []
    for name, tensor in state.items():
        if not tensor.is_floating_point():
            continue
        hit = found.get(_key(tensor.detach().cpu().numpy()))
        if hit is not None:
            out[name] = dict(hit)
        elif not tensor.any():
            out[name] = {"zeros": list(tensor.shape)}
        else:
            missing.append(name)
    if missing:
        raise PipelineError(f"the exported graph holds no initializer equal to {missing[:3]} "
                            f"({len(missing)} tensors): its weights cannot be named for the model facts")
    return out


def _axis(proto: onnx.ModelProto, name: str, values: np.ndarray, scale: np.ndarray) -> int | None:
    """The axis a per-channel scale runs along for the quantized initializer ``name`` (None: per tensor).

    ``DequantizeLinear`` says so itself (attribute ``axis``, default 1); ``MatMulInteger`` takes one zero point
    per column of its operand B, so a B operand's scales run along its last axis.
    """
    if scale.size == 1:
        return None
    for node in proto.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] == name:
            return next((a.i for a in node.attribute if a.name == "axis"), 1) % values.ndim
        if node.op_type == "MatMulInteger" and list(node.input[1:2]) == [name]:
            return values.ndim - 1
    raise PipelineError(f"initializer {name}: per-channel scales {scale.shape} of an operator this reader does "
                        "not know (DequantizeLinear and MatMulInteger are)")


def dequantized(proto: onnx.ModelProto, arrays: dict[str, np.ndarray], name: str) -> np.ndarray:
    """Float32 values of initializer ``name`` of the float graph, found in ``arrays`` (the initializers of the
    same graph or of its quantized version): as stored, or ``(q - zero_point) * scale`` when ONNX Runtime
    quantized it (``name`` then survives as ``name_quantized``, ``name_scale``, ``name_zero_point``; or with
    ``_Transposed`` before the suffixes, holding the transpose: a ``Gemm`` operand with ``transB``)."""
    if name in arrays:
        return arrays[name].astype(np.float32)
    base = next((b for b in (name, name + TRANSPOSED) if b + QUANTIZED in arrays), None)
    if base is None:
        raise PipelineError(f"the graph has no initializer {name} (nor {name}{QUANTIZED})")
    values, scale, zero = (arrays[base + s] for s in (QUANTIZED, SCALE, ZERO_POINT))
    axis = _axis(proto, base + QUANTIZED, values, scale)
    shape = [1] * values.ndim
    if axis is not None:
        shape[axis] = scale.size
    zero = zero.astype(np.float32).reshape(shape)
    out = ((values.astype(np.float32) - zero) * scale.astype(np.float32).reshape(shape)).astype(np.float32)
    return out.T if base != name else out


def float_state(proto: onnx.ModelProto, mapping: dict[str, dict]) -> dict[str, torch.Tensor]:
    """``{state-dict name: float32 tensor}`` from the graph's initializers and a :func:`weight_map`.

    Shapes are PyTorch's (transposed initializers are transposed back); weights ONNX Runtime quantized are
    dequantized, so an int8 graph gives the float values its int8 weights stand for.
    """
    arrays = initializers(proto)
    out = {}
    for state_name, entry in mapping.items():
        if "zeros" in entry:
            out[state_name] = torch.zeros(entry["zeros"])
            continue
        values = dequantized(proto, arrays, entry["initializer"])
        out[state_name] = torch.from_numpy(np.ascontiguousarray(values.T if entry["transposed"] else values))
    return out
