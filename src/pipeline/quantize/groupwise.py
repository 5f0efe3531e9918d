"""Group-wise asymmetric integer weight quantization, shared by ``weight_int8`` and ``weight_int4``.

On load the weights are dequantized into ordinary float Linear layers: on the CPU that is all (no kernel,
so the evaluate stage reports accuracy and size only, never the dequantized model's speed); on CUDA each
scheme hands them to torchao's weight-only kernel (``weight_int8``, ``weight_int4``: their ``prepare``).

Stored names for a quantized Linear at module path ``P`` (weight ``(out, in)``, groups of ``g`` consecutive
input weights per output row):

- ``P.weight_q``: uint8; ``(out, in)`` for int8, ``(out, in / 2)`` for int4 (two 4-bit values per byte,
  low nibble first)
- ``P.weight_scale``: float16 ``(out, in / g)``
- ``P.weight_zero_point``: uint8 ``(out, in / g)``
- ``P.bias``: unchanged float
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.core.errors import PipelineError
from pipeline.models.build import load_state_
from pipeline.models.formats import Tensors


@dataclass
class GroupParams:
    """Knobs of the group-wise integer schemes (``quantize.weight_int8``, ``quantize.weight_int4``)."""

    group_size: int = 32
    """Consecutive input weights sharing one scale and zero point (an even number >= 2)."""

    def __post_init__(self):
        if self.group_size < 2 or self.group_size % 2:
            raise ValueError("group_size must be an even number >= 2")


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


def tied_keys(model: torch.nn.Module) -> set[str]:
    """State-dict names that are tied duplicates of another tensor (the MLM decoder shares the word
    embeddings), so they are neither stored nor quantized: loading re-ties them to their source.

    transformers 5 lists the ties in force in ``all_tied_weights_keys`` (``{tied name: source name}``, empty
    when ``config.tie_word_embeddings`` is False); the class attribute ``_tied_weights_keys`` (a dict in v5, a
    list before) lists the *possible* ties, so each candidate is kept only if it really aliases another tensor.
    """
    candidates = getattr(model, "all_tied_weights_keys", None)
    if candidates is None:
        candidates = getattr(model, "_tied_weights_keys", None) or ()
    state = model.state_dict(keep_vars=True)
    return {k for k in candidates if k in state
            and any(v is state[k] for name, v in state.items() if name != k)}


def linear_paths(model: torch.nn.Module) -> list[str]:
    """Module paths of the float Linear layers that weight-only schemes quantize: all of them except a Linear
    whose weight is tied to another tensor (an MLM decoder stays the word embeddings, stored once in float)."""
    tied = tied_keys(model)
    return [name for name, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and f"{name}.weight" not in tied]


def state_without_tied(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict without tied duplicates (:func:`tied_keys`)."""
    tied = tied_keys(model)
    return {k: v for k, v in model.state_dict().items() if k not in tied}


def take(tensors: Tensors, key: str, source: str) -> torch.Tensor:
    """Remove and return ``tensors[key]``; a missing key is a :class:`PipelineError` naming ``source``."""
    if key not in tensors:
        raise PipelineError(f"{source}: missing tensor '{key}'")
    return tensors.pop(key)


def check_group_size(model: torch.nn.Module, paths: list[str], bits: int, params: GroupParams) -> None:
    """Every quantized Linear's input dimension is a multiple of ``group_size`` (checked for all before any
    is quantized; physically pruned FFN or head sizes are the usual culprits)."""
    modules = dict(model.named_modules())
    for path in paths:
        cols = modules[path].in_features
        if cols % params.group_size:
            raise PipelineError(
                f"quantize.weight_int{bits}.group_size={params.group_size}: input dimension {cols} of '{path}' is "
                "not a multiple of it (choose a group size that divides every layer's input)"
            )


@torch.no_grad()
def quantize_weights(model: torch.nn.Module, bits: int, params: GroupParams) -> tuple[Tensors, dict]:
    """The tensors to store for ``bits``-bit group-wise weights of every Linear, and the scheme description.

    The model is not changed; non-Linear tensors are stored as they are (tied duplicates left out).
    """
    state = state_without_tied(model)
    paths = linear_paths(model)
    check_group_size(model, paths, bits, params)
    weights = {f"{p}.weight" for p in paths}
    tensors = {k: v.contiguous() for k, v in state.items() if k not in weights}
    for path in paths:
        q, scale, zero = quantize_groups(state[f"{path}.weight"], bits, params.group_size)
        tensors[f"{path}.weight_q"] = pack_int4(q) if bits == 4 else q
        tensors[f"{path}.weight_scale"] = scale
        tensors[f"{path}.weight_zero_point"] = zero
    return tensors, {"scheme": f"weight_int{bits}", "bits": bits, "group_size": params.group_size,
                     "symmetric": False, "quantized_modules": paths,
                     "note": "weights dequantized to float32 on load; timed only through torchao on CUDA"}


@torch.no_grad()
def float_weights(tensors: Tensors, scheme: dict, source: str) -> Tensors:
    """The state dict with float32 weights rebuilt from the stored integers (other tensors unchanged)."""
    tensors = dict(tensors)
    for path in scheme["quantized_modules"]:
        scale = take(tensors, f"{path}.weight_scale", source)
        q = take(tensors, f"{path}.weight_q", source)
        q = unpack_int4(q) if scheme["bits"] == 4 else q
        zero = take(tensors, f"{path}.weight_zero_point", source)
        tensors[f"{path}.weight"] = dequantize_groups(q, scale, zero, scheme["group_size"])
    return tensors


def load(model: torch.nn.Module, tensors: Tensors, scheme: dict, source: str) -> torch.nn.Module:
    """``model`` (float32) holding the dequantized weights."""
    load_state_(model, float_weights(tensors, scheme, source), source)
    return model
