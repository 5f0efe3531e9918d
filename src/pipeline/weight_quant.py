"""Weight-only quantization (int8 / int4, group-wise affine) and low-precision casts (fp16, bf16, fp8).

These schemes change how weights are *stored*; they do not bring their own kernels. On load, quantized
weights are dequantized into ordinary float Linear layers, so the evaluate stage measures exactly the
accuracy effect of the rounding and the size on disk of the compact format. Speed comes from a serving
kernel (GPU int4/fp8 GEMMs), which this project does not claim on CPU.

Stored names for a weight-only quantized Linear at module path ``P`` (weight ``(out, in)``, groups of
``g`` consecutive input weights per output row):

- ``P.weight_q``: uint8; ``(out, in)`` for int8, ``(out, in / 2)`` for int4 (two 4-bit values per byte,
  low nibble first)
- ``P.weight_scale``: float16 ``(out, in / g)``
- ``P.weight_zero_point``: uint8 ``(out, in / g)``
- ``P.bias``: unchanged float

fp16 / bf16 store every floating-point tensor in that dtype. fp8 stores every quantized Linear weight as
``float8_e4m3fn`` with a float32 per-output-row scale (``P.weight_fp8``, ``P.weight_scale``).
"""

from __future__ import annotations

import torch

from pipeline.errors import PipelineError

WEIGHT_ONLY = {"weight_int8": 8, "weight_int4": 4}
CASTS = {"fp16": torch.float16, "bf16": torch.bfloat16}
FP8 = "fp8"
FP8_MAX = 448.0  # largest finite float8_e4m3fn value


def quantize_groups(weight: torch.Tensor, bits: int, group_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric (min/max) quantization of a 2-D weight in groups along the input dimension.

    Every group of ``group_size`` consecutive weights of a row gets its own scale and zero point so that
    the group's minimum and maximum (with 0 included) map to ``0`` and ``2**bits - 1``.

    Returns:
        ``(q, scale, zero_point)``: ``q`` uint8 ``(out, in)`` with values in ``[0, 2**bits)``, ``scale``
        float16 ``(out, in / group_size)``, ``zero_point`` uint8 of the same shape.

    Raises:
        PipelineError: the input dimension is not a multiple of ``group_size``.
    """
    rows, cols = weight.shape
    if cols % group_size:
        raise PipelineError(f"input dimension {cols} is not a multiple of quantize.group_size={group_size}")
    levels = 2**bits - 1
    groups = weight.detach().float().reshape(rows, cols // group_size, group_size)
    low = groups.amin(-1).clamp(max=0.0)
    high = groups.amax(-1).clamp(min=0.0)
    scale = ((high - low) / levels).clamp(min=1e-8).to(torch.float16)
    s = scale.float()
    zero = torch.clamp(torch.round(-low / s), 0, levels)
    q = torch.clamp(torch.round(groups / s.unsqueeze(-1)) + zero.unsqueeze(-1), 0, levels)
    return q.reshape(rows, cols).to(torch.uint8), scale, zero.to(torch.uint8)


def dequantize_groups(q: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, group_size: int) -> torch.Tensor:
    """Float32 weights from :func:`quantize_groups` output: ``(q - zero_point) * scale`` per group."""
    rows, cols = q.shape
    groups = q.float().reshape(rows, cols // group_size, group_size)
    return ((groups - zero_point.float().unsqueeze(-1)) * scale.float().unsqueeze(-1)).reshape(rows, cols)


def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """Two 4-bit values per byte along the last dimension (even index in the low nibble)."""
    if q.shape[-1] % 2:
        raise PipelineError(f"int4 packing needs an even input dimension, got {q.shape[-1]}")
    return (q[..., 0::2] | (q[..., 1::2] << 4)).to(torch.uint8)


def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`pack_int4`."""
    out = torch.empty(*packed.shape[:-1], packed.shape[-1] * 2, dtype=torch.uint8)
    out[..., 0::2] = packed & 0x0F
    out[..., 1::2] = packed >> 4
    return out


def linear_paths(model: torch.nn.Module) -> list[str]:
    """Module paths of the float Linear layers that weight-only schemes quantize (all of them)."""
    return [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict without tied duplicates (the MLM decoder shares the word embeddings)."""
    tied = set(getattr(model, "_tied_weights_keys", None) or {})
    return {k: v for k, v in model.state_dict().items() if k not in tied}


@torch.no_grad()
def quantize_tensors(model: torch.nn.Module, scheme: str, group_size: int = 32) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors to store for ``scheme`` and a JSON-able description of it.

    Args:
        model: a dense float model (not changed).
        scheme: ``weight_int8``, ``weight_int4``, ``fp16``, ``bf16`` or ``fp8``.
        group_size: input weights per scale/zero point (weight-only schemes).
    """
    state = _state(model)
    if scheme in CASTS:
        dtype = CASTS[scheme]
        tensors = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in state.items()}
        return tensors, {"scheme": scheme, "dtype": str(dtype).removeprefix("torch."),
                         "note": "every floating-point tensor stored in this dtype; loaded in it"}
    paths = linear_paths(model)
    weights = {f"{p}.weight" for p in paths}
    tensors = {k: v.contiguous() for k, v in state.items() if k not in weights}
    if scheme in WEIGHT_ONLY:
        bits = WEIGHT_ONLY[scheme]
        for path in paths:
            q, scale, zero = quantize_groups(state[f"{path}.weight"], bits, group_size)
            tensors[f"{path}.weight_q"] = pack_int4(q) if bits == 4 else q
            tensors[f"{path}.weight_scale"] = scale
            tensors[f"{path}.weight_zero_point"] = zero
        return tensors, {"scheme": scheme, "bits": bits, "group_size": group_size, "symmetric": False,
                         "quantized_modules": paths,
                         "note": "weights dequantized to float32 on load; no int kernels are used"}
    if scheme == FP8:
        if not hasattr(torch, "float8_e4m3fn"):
            raise PipelineError("this torch has no float8_e4m3fn dtype")
        for path in paths:
            w = state[f"{path}.weight"].float()
            scale = (w.abs().amax(1, keepdim=True) / FP8_MAX).clamp(min=1e-12)
            tensors[f"{path}.weight_fp8"] = (w / scale).to(torch.float8_e4m3fn)
            tensors[f"{path}.weight_scale"] = scale.squeeze(1)
        return tensors, {"scheme": scheme, "format": "float8_e4m3fn", "scale": "per output row",
                         "quantized_modules": paths,
                         "note": "weights stored in fp8 and dequantized to float32 on load"}
    raise PipelineError(f"unknown quantization scheme '{scheme}'")


def _take(tensors: dict[str, torch.Tensor], key: str, source: str) -> torch.Tensor:
    if key not in tensors:
        raise PipelineError(f"{source}: missing tensor '{key}'")
    return tensors.pop(key)


@torch.no_grad()
def dequantized_state(tensors: dict[str, torch.Tensor], scheme: dict, source: str) -> dict[str, torch.Tensor]:
    """The ordinary state dict (float weights) rebuilt from stored tensors of ``scheme``."""
    name = scheme.get("scheme")
    tensors = dict(tensors)
    if name in CASTS:
        return tensors
    if name not in WEIGHT_ONLY and name != FP8:
        raise PipelineError(f"{source}: unknown quantization scheme '{name}'")
    for path in scheme["quantized_modules"]:
        scale = _take(tensors, f"{path}.weight_scale", source)
        if name == FP8:
            weight = _take(tensors, f"{path}.weight_fp8", source).float() * scale.float().unsqueeze(1)
        else:
            q = _take(tensors, f"{path}.weight_q", source)
            q = unpack_int4(q) if scheme["bits"] == 4 else q
            zero = _take(tensors, f"{path}.weight_zero_point", source)
            weight = dequantize_groups(q, scale, zero, scheme["group_size"])
        tensors[f"{path}.weight"] = weight
    return tensors


def load_dtype(scheme: dict) -> torch.dtype:
    """The dtype a loaded model of ``scheme`` runs in (the cast dtype, else float32)."""
    return CASTS.get(scheme.get("scheme"), torch.float32)
