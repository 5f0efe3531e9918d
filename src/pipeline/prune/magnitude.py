"""Pruning method ``magnitude``: unstructured one-shot magnitude pruning of the encoder's Linear weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from pipeline.prune import PruneContext, register
from pipeline.prune.masks import apply_masks_, magnitude_masks, prunable_weights, sparsity_report


@dataclass
class MagnitudeParams:
    """Unstructured one-shot magnitude pruning of the encoder's Linear weights."""

    sparsity: float = 0.5
    """Fraction of encoder Linear weights set to zero, in [0, 1)."""
    scope: Literal["global", "layer"] = "global"
    """``global`` ranks all weights together; ``layer`` prunes each matrix to the same sparsity."""

    def __post_init__(self):
        if not 0 <= self.sparsity < 1:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity}")


@register("magnitude", MagnitudeParams, zeroing=True, target="sparsity")
def magnitude(model: torch.nn.Module, params: MagnitudeParams, context: PruneContext) -> dict:
    """Zero the ``params.sparsity`` smallest-magnitude weights (no data needed)."""
    apply_masks_(model, magnitude_masks(prunable_weights(model), params.sparsity, params.scope))
    return {"target_sparsity": params.sparsity, "scope": params.scope, **sparsity_report(model)}
