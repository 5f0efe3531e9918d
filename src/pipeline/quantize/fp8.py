"""Scheme ``fp8``: every Linear weight stored as float8_e4m3fn with a float32 scale per output row.

Stored names for a Linear at path ``P``: ``P.weight_fp8`` (``(out, in)``) and ``P.weight_scale`` (``(out,)``);
other tensors unchanged. On load the weights are dequantized to float32 Linear layers; the GPU path that
runs fp8 GEMMs on the same stored values is :func:`pipeline.models.accel.to_fp8_`.
"""

from __future__ import annotations

import torch

from pipeline.core.errors import PipelineError
from pipeline.models.build import load_state_
from pipeline.quantize import NoParams, Scheme, Tensors, register
from pipeline.quantize.groupwise import linear_paths, state_without_tied, take

FP8_MAX = 448.0  # largest finite float8_e4m3fn value


@torch.no_grad()
def quantize(model: torch.nn.Module, params: NoParams) -> tuple[Tensors, dict]:
    """Per-row scaled e4m3 weights of every Linear (the model is not changed)."""
    if not hasattr(torch, "float8_e4m3fn"):
        raise PipelineError("this torch has no float8_e4m3fn dtype")
    state = state_without_tied(model)
    paths = linear_paths(model)
    weights = {f"{p}.weight" for p in paths}
    tensors = {k: v.contiguous() for k, v in state.items() if k not in weights}
    for path in paths:
        w = state[f"{path}.weight"].float()
        scale = (w.abs().amax(1, keepdim=True) / FP8_MAX).clamp(min=1e-12)
        tensors[f"{path}.weight_fp8"] = (w / scale).to(torch.float8_e4m3fn)
        tensors[f"{path}.weight_scale"] = scale.squeeze(1)
    return tensors, {"scheme": "fp8", "format": "float8_e4m3fn", "scale": "per output row",
                     "quantized_modules": paths, "note": "weights stored in fp8 and dequantized to float32 on load"}


@torch.no_grad()
def float_weights(tensors: Tensors, scheme: dict, source: str) -> Tensors:
    """The state dict with float32 weights ``fp8 * scale`` (other tensors unchanged)."""
    tensors = dict(tensors)
    for path in scheme["quantized_modules"]:
        scale = take(tensors, f"{path}.weight_scale", source)
        tensors[f"{path}.weight"] = take(tensors, f"{path}.weight_fp8", source).float() * scale.float().unsqueeze(1)
    return tensors


def load(model: torch.nn.Module, tensors: Tensors, scheme: dict, source: str) -> torch.nn.Module:
    load_state_(model, float_weights(tensors, scheme, source), source)
    return model


register(Scheme("fp8", NoParams, quantize=quantize, load=load, float_state=float_weights), __name__)
