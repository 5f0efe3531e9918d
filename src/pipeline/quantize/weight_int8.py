"""Scheme ``weight_int8``: group-wise asymmetric int8 weights with float16 scales (:mod:`.groupwise`).

Kernel: torchao's int8 weight-only Linear (per-row scales, under ``torch.compile``) on CUDA; none on the CPU
(the weights are dequantized to float32 on load there: accuracy and size only).
"""

from __future__ import annotations

import torch

from pipeline.quantize import cuda_kernel, groupwise, register, torchao_prepare, with_kernels
from pipeline.models.formats import Kernel, Prepared, Scheme

KERNEL = "torchao Int8WeightOnlyConfig (int8 weight-only, per-row)"


def kernel_for(device: torch.device) -> Kernel:
    """torchao's int8 weight-only kernel on CUDA (compute capability >= 8.0: bf16); none on the CPU."""
    if device.type == "cpu":
        return Kernel(None, "weight-only int8 has no CPU kernel in this project (weights are dequantized to "
                            "float32 on load): accuracy and size only")
    return cuda_kernel(device, KERNEL, (8, 0))


def prepare(model: torch.nn.Module, device: torch.device, description: dict) -> Prepared:
    """Every Linear of the loaded model (stored int8 values, dequantized) as a torchao int8 weight-only one."""
    return torchao_prepare(model, device, lambda q: q.Int8WeightOnlyConfig(), lambda m: True, kernel_for(device))


register(Scheme(
    "weight_int8", groupwise.GroupParams,
    quantize=lambda model, params: with_kernels(groupwise.quantize_weights(model, 8, params),
                                                {"cuda": "Int8WeightOnlyConfig()", "cpu": None}),
    load=groupwise.load, float_state=groupwise.float_weights, kernel_for=kernel_for, prepare=prepare,
), __name__)
