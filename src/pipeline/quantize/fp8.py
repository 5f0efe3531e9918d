"""Scheme ``fp8``: every Linear weight stored as float8_e4m3fn with a float32 scale per output row.

Stored names for a Linear at path ``P``: ``P.weight_fp8`` (``(out, in)``) and ``P.weight_scale`` (``(out,)``);
other tensors unchanged. On load the weights are dequantized to float32 Linear layers (holding exactly the
stored grid). Kernel: torchao's fp8 Linear (e4m3 weights and dynamic per-token e4m3 activations, row-wise
scales, ``torch._scaled_mm``) on CUDA with compute capability >= 8.9, applied to those weights: the per-row
scales it derives are the stored ones (up to float32 rounding), so it runs the stored values. Its ``fits``
leaves out Linears whose dimensions are not multiples of 16 (e.g. a 2-class classifier), listed as
``slow_linears``. None on the CPU or older GPUs: accuracy and size only.
"""

from __future__ import annotations

import torch

from pipeline.core.errors import PipelineError
from pipeline.models.build import load_state_
from pipeline.quantize import NoParams, cuda_kernel, multiple_of, register, torchao_prepare
from pipeline.models.formats import Kernel, Prepared, Scheme, Tensors
from pipeline.quantize.groupwise import linear_paths, state_without_tied, take

FP8_MAX = 448.0  # largest finite float8_e4m3fn value
KERNEL = "torchao Float8DynamicActivationFloat8WeightConfig (fp8 row-wise _scaled_mm)"
CONFIG = "Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())"


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
                     "quantized_modules": paths, "note": "weights stored in fp8 and dequantized to float32 on load",
                     "kernels": {"cuda": CONFIG, "cpu": None}}


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


def kernel_for(device: torch.device) -> Kernel:
    """torchao's row-wise fp8 kernel on CUDA with compute capability >= 8.9 (fp8 tensor cores); none elsewhere."""
    if device.type == "cpu":
        return Kernel(None, "fp8 has no CPU kernel (weights are dequantized to float32 on load): accuracy and size only")
    return cuda_kernel(device, KERNEL, (8, 9))


def prepare(model: torch.nn.Module, device: torch.device, description: dict) -> Prepared:
    """The Linears whose dimensions are multiples of 16 as torchao fp8 row-wise ones (the others listed)."""
    return torchao_prepare(
        model, device, lambda q: q.Float8DynamicActivationFloat8WeightConfig(granularity=q.PerRow()),
        multiple_of(16), kernel_for(device))


register(Scheme("fp8", NoParams, quantize=quantize, load=load, float_state=float_weights,
                kernel_for=kernel_for, prepare=prepare), __name__)
