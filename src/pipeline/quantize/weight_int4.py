"""Scheme ``weight_int4``: group-wise asymmetric int4 weights (two per byte) with float16 scales
(:mod:`.groupwise`).

Kernel: torchao's int4 weight-only Linear (tinygemm, ``tile_packed_to_4d``, under ``torch.compile``) on CUDA;
none on the CPU (the weights are dequantized to float32 on load there: accuracy and size only).
"""

from __future__ import annotations

import torch

from pipeline.quantize import cuda_kernel, groupwise, register, torchao_prepare, with_kernels
from pipeline.models.formats import Kernel, Prepared, Scheme

KERNEL = "torchao Int4WeightOnlyConfig (tinygemm int4 weight-only)"
TORCHAO_GROUPS = (32, 64, 128, 256)  # the group sizes torchao's int4 weight-only config accepts


def kernel_for(device: torch.device) -> Kernel:
    """torchao's tinygemm int4 kernel on CUDA (compute capability >= 8.0); none on the CPU."""
    if device.type == "cpu":
        return Kernel(None, "weight-only int4 has no CPU kernel in this project (weights are dequantized to "
                            "float32 on load): accuracy and size only")
    return cuda_kernel(device, KERNEL, (8, 0))


def torchao_group(description: dict) -> int:
    """torchao's group size: the stored one when torchao accepts it, else 128 (its default)."""
    stored = int(description.get("group_size", 128))
    return stored if stored in TORCHAO_GROUPS else 128


def quantize(model: torch.nn.Module, params: groupwise.GroupParams) -> tuple[dict, dict]:
    """The stored int4 tensors and their description, with the torchao config that runs them on CUDA."""
    tensors, description = groupwise.quantize_weights(model, 4, params)
    config = f"Int4WeightOnlyConfig(group_size={torchao_group(description)}, int4_packing_format='tile_packed_to_4d')"
    return with_kernels((tensors, description), {"cuda": config, "cpu": None})


def prepare(model: torch.nn.Module, device: torch.device, description: dict) -> Prepared:
    """The Linears whose input dimension is a multiple of the group size as torchao int4 weight-only ones."""
    group = torchao_group(description)
    return torchao_prepare(
        model, device,
        lambda q: q.Int4WeightOnlyConfig(group_size=group, int4_packing_format="tile_packed_to_4d"),
        lambda m: m.in_features % group == 0, kernel_for(device))


register(Scheme(
    "weight_int4", groupwise.GroupParams,
    quantize=quantize,
    load=groupwise.load, float_state=groupwise.float_weights, kernel_for=kernel_for, prepare=prepare,
), __name__)
