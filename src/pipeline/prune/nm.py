"""Pruning method ``nm``: semi-structured N:M sparsity (2:4 for sparse tensor cores) of the encoder's Linears."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.core.errors import PipelineError
from pipeline.prune import PruneContext, register
from pipeline.prune.masks import apply_masks_, prunable_weights, sparsity_report


@dataclass
class NMParams:
    """Semi-structured N:M sparsity (2:4 for sparse tensor cores) of the encoder's Linear weights."""

    n: int = 2
    """Weights kept in every group."""
    m: int = 4
    """Group size: consecutive weights along the input dimension."""

    def __post_init__(self):
        if not 0 < self.n < self.m:
            raise ValueError("n and m must satisfy 0 < n < m")


def nm_masks(weights: dict[str, torch.Tensor], n: int, m: int) -> dict[str, torch.Tensor]:
    """Keep-masks with exactly ``n`` of every ``m`` consecutive weights along the input dimension kept.

    The largest magnitudes of each group are kept (ties by position). Tensors whose input dimension is not
    a multiple of ``m`` are rejected: the pattern must cover every weight for sparse kernels to use it.
    """
    out = {}
    for name, w in weights.items():
        rows, cols = w.shape
        if cols % m:
            raise PipelineError(f"{name}: input dimension {cols} is not a multiple of m={m}")
        groups = w.detach().abs().reshape(rows, cols // m, m)  # on the weights' device
        # stable ranking: sort descending by magnitude, keep the first n of each group
        order = torch.sort(groups, dim=-1, descending=True, stable=True).indices
        mask = torch.zeros_like(groups, dtype=torch.bool)
        mask.scatter_(-1, order[..., :n], True)
        out[name] = mask.reshape(rows, cols)
    return out


def check_nm(model: torch.nn.Module, params: NMParams) -> None:
    """``m`` divides the input dimension of every prunable weight (the pattern must cover each row)."""
    for name, w in prunable_weights(model).items():
        if w.shape[1] % params.m:
            raise PipelineError(
                f"prune.nm.m={params.m}: input dimension {w.shape[1]} of '{name}' is not a multiple of it"
            )


@register("nm", NMParams, zeroing=True, check=check_nm, target="n")
def nm(model: torch.nn.Module, params: NMParams, context: PruneContext) -> dict:
    """One-shot N:M magnitude pruning (``n`` of every ``m`` weights kept; 2:4 = 50% sparsity)."""
    apply_masks_(model, nm_masks(prunable_weights(model), params.n, params.m))
    return {"pattern": f"{params.n}:{params.m}", **sparsity_report(model)}
