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
    """Keep-masks that zero exactly ``round(sparsity * n)`` smallest-magnitude entries.

    Args:
        weights: name -> tensor (any shapes).
        sparsity: fraction to remove, in [0, 1).
        scope: ``global`` ranks all entries together; ``layer`` ranks each tensor separately.

    Returns:
        name -> bool tensor of the same shape, True where the weight is kept. Ties are broken by position,
        so the count is exact.
    """
    if not 0 <= sparsity < 1:
        raise PipelineError(f"sparsity must be in [0, 1), got {sparsity}")

    def keep_mask(flat: torch.Tensor) -> torch.Tensor:
        n_prune = round(sparsity * flat.numel())
        mask = torch.ones(flat.numel(), dtype=torch.bool)
        if n_prune:
            # stable sort: equal magnitudes are pruned in index order, deterministically
            order = torch.sort(flat.abs(), stable=True).indices
            mask[order[:n_prune]] = False
        return mask

    if scope == "layer":
        return {k: keep_mask(w.detach().flatten().cpu()).view(w.shape) for k, w in weights.items()}
    flat = torch.cat([w.detach().flatten().cpu() for w in weights.values()])
    mask = keep_mask(flat)
    out, offset = {}, 0
    for k, w in weights.items():
        out[k] = mask[offset : offset + w.numel()].view(w.shape)
        offset += w.numel()
    return out


def zero_masks(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Keep-masks of the prunable weights that already contain zeros (to preserve them while training)."""
    return {k: (w != 0) for k, w in prunable_weights(model).items() if bool((w == 0).any())}


@torch.no_grad()
def apply_masks_(model: torch.nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Multiply the named prunable weights by their masks, in place."""
    weights = prunable_weights(model)
    for name, mask in masks.items():
        weights[name].mul_(mask.to(weights[name].device, weights[name].dtype))


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
