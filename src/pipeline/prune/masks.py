"""Masks, sparsity and the cubic sparsity schedule shared by the zeroing pruning methods."""

from __future__ import annotations

import torch

from pipeline.core.errors import PipelineError
from pipeline.models import families


def prunable_weights(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The encoder's Linear weight matrices by name (``encoder.layer.0.attention.self.query.weight``, paths in
    the bare model); embeddings, LayerNorms and task heads are left dense."""
    return {f"{name}.weight": m.weight for name, m in families.of(model).prunable_linears(model).items()}


def prunable_linears(model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    """The encoder's Linear layers by path (the modules of :func:`prunable_weights`)."""
    return families.of(model).prunable_linears(model)


def magnitude_masks(weights: dict[str, torch.Tensor], sparsity: float, scope: str = "global") -> dict[str, torch.Tensor]:
    """Keep-masks that zero exactly ``round(sparsity * n)`` smallest-magnitude entries, on the weights' device.

    The masks equal those of a stable sort of all magnitudes (the smallest ``k`` pruned, equal magnitudes in
    flat index order: tensors in ``weights`` order, row-major inside each), but no weight is copied to the CPU
    or concatenated: :func:`kth_smallest_key` finds the ``k``-th smallest magnitude by a radix select with a
    few histogram passes over the tensors, then one pass prunes every magnitude below it and the first ties.

    Args:
        weights: name -> tensor (any shapes, floating point, all on one device).
        sparsity: fraction to remove, in [0, 1).
        scope: ``global`` ranks all entries together; ``layer`` ranks each tensor separately.

    Returns:
        name -> bool tensor of the same shape and device, True where the weight is kept.

    Raises:
        PipelineError: a sparsity outside [0, 1) or an unknown scope.
    """
    if not 0 <= sparsity < 1:
        raise PipelineError(f"sparsity must be in [0, 1), got {sparsity}")
    if scope not in ("global", "layer"):
        raise PipelineError(f"scope must be 'global' or 'layer', got {scope!r}")
    groups = [[k] for k in weights] if scope == "layer" else [list(weights)]
    out = {}
    for names in groups:
        tensors = [weights[k].detach() for k in names]
        keep = keep_smallest_out(tensors, round(sparsity * sum(t.numel() for t in tensors)))
        out.update(zip(names, keep))
    return out


def magnitude_keys(weight: torch.Tensor) -> torch.Tensor:
    """``|w|`` as integers ordered like the magnitudes: the bit pattern of an IEEE float without its sign bit
    grows with the magnitude, so comparing keys compares magnitudes exactly (``-0.0`` and ``0.0`` are equal).

    Returns:
        ``(numel,)`` int32 keys for 16- and 32-bit floats, int64 for float64, on the weight's device.
    """
    flat = weight.detach().flatten()
    if flat.element_size() == 2:
        return flat.view(torch.int16).to(torch.int32) & 0x7FFF
    if flat.element_size() == 4:
        return flat.view(torch.int32) & 0x7FFFFFFF
    return flat.view(torch.int64) & 0x7FFFFFFFFFFFFFFF


_DIGIT = 16  # bits of the key resolved per histogram pass (65,536 bins)


def _digit_counts(keys: torch.Tensor, shift: int, prefix: int | None) -> torch.Tensor:
    """``(65536,)`` counts of the digit ``keys >> shift & 0xFFFF`` over the keys whose higher digits equal
    ``prefix`` (None: all keys, the first pass, where there are no higher digits)."""
    digits = keys >> shift if shift else keys
    if prefix is None:
        return torch.bincount(digits, minlength=1 << _DIGIT)
    # bin 0 and the last bin collect the keys outside the prefix's range; no copy of the selected keys
    digits = (digits - ((prefix << _DIGIT) - 1)).clamp_(0, (1 << _DIGIT) + 1)
    return torch.bincount(digits, minlength=(1 << _DIGIT) + 2)[1:-1]


def kth_smallest_key(tensors: list[torch.Tensor], k: int) -> tuple[int, int, list[int]]:
    """The ``k``-th smallest magnitude key (1-based) over all ``tensors``, by most-significant-digit radix
    select: each pass histograms the next 16 bits of the keys that share the digits found so far
    (``torch.bincount`` per tensor on its device, summed), so 16-bit floats take one pass, 32-bit two and
    float64 four. The extra memory is one tensor's keys and one histogram per tensor.

    Returns:
        ``(key, ties, equal)``: ``key`` as from :func:`magnitude_keys`; ``ties`` in ``[1, count(key)]``, how
        many entries equal to it are among the ``k`` smallest; ``equal[i]``: the entries of ``tensors[i]``
        equal to it.
    """
    bits = 16 if tensors[0].element_size() == 2 else 8 * tensors[0].element_size()
    prefix, rank = None, k
    for shift in range(bits - _DIGIT, -1, -_DIGIT):
        counts = torch.stack([_digit_counts(magnitude_keys(t), shift, prefix) for t in tensors])
        hist = counts.sum(0)
        cum = hist.cumsum(0)
        digit = int(torch.searchsorted(cum, torch.tensor([rank], device=cum.device)))
        rank -= int(cum[digit]) - int(hist[digit])
        prefix = (prefix or 0) << _DIGIT | digit
    return prefix, rank, counts[:, digit].tolist()


def keep_smallest_out(tensors: list[torch.Tensor], k: int) -> list[torch.Tensor]:
    """Keep-masks (bool, each tensor's shape and device) pruning the ``k`` smallest magnitudes of all
    ``tensors`` together, ties in flat order (a stable sort's choice)."""
    if k == 0:
        return [torch.ones_like(t, dtype=torch.bool) for t in tensors]
    threshold, ties, equal = kth_smallest_key(tensors, k)
    out = []
    for t, count in zip(tensors, equal):
        keys = magnitude_keys(t)
        keep = keys > threshold
        if count and ties < count:  # some entries equal to the threshold stay: all but the first ``ties``
            same = keys == threshold
            keep |= same & (same.cumsum(0) > ties)
        ties = max(0, ties - count)
        out.append(keep.view(t.shape))
    return out


def zero_masks(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Keep-masks of the prunable weights that already contain zeros (to preserve them while training)."""
    return {k: (w != 0) for k, w in prunable_weights(model).items() if bool((w == 0).any())}


@torch.no_grad()
def apply_masks_(model: torch.nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Multiply the named prunable weights by their masks, in place (a bool mask multiplies as 0/1 without a
    float copy of it; masks made on the weights' device are not copied at all)."""
    weights = prunable_weights(model)
    for name, mask in masks.items():
        weights[name].mul_(mask.to(weights[name].device))


def sparsity_report(model: torch.nn.Module) -> dict:
    """Achieved sparsity of the prunable weights: overall and per tensor."""
    weights = prunable_weights(model)
    zeros = {k: int((w == 0).sum()) for k, w in weights.items()}
    total = sum(w.numel() for w in weights.values())
    return {
        "sparsity": sum(zeros.values()) / total,
        "per_tensor": {k: zeros[k] / weights[k].numel() for k in weights},
    }


def cubic_sparsity(step: int, total: int, final: float, initial: float = 0.0, begin: float = 0.0,
                   end: float = 1.0) -> float:
    """Target sparsity after ``step`` of ``total`` optimizer steps (Zhu & Gupta, 2017):

    ``s_f + (s_i - s_f) * (1 - (t - t_0) / (t_1 - t_0))^3`` between ``t_0 = begin * total`` and
    ``t_1 = end * total``; ``s_i`` (``initial``) before, ``s_f`` (``final``) after.
    """
    t0, t1 = begin * total, end * total
    if step <= t0:
        return initial
    if step >= t1:
        return final
    progress = (step - t0) / (t1 - t0)
    return final + (initial - final) * (1 - progress) ** 3


def thinned(schedule: list, points: int = 20) -> list:
    """About ``points`` evenly spaced entries of a logged schedule (for ``pipeline.json``)."""
    return schedule[:: max(1, len(schedule) // points)]
