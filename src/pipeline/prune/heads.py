"""Pruning method ``heads``: physical attention-head pruning by gradient-based importance (Michel et al., 2019)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.core.errors import PipelineError
from pipeline.models.structure import heads_per_layer
from pipeline.prune import PruneContext, register
from pipeline.prune.importance import head_importance
from pipeline.prune.structured import check_heads, prune_top_heads_


@dataclass
class HeadsParams:
    """Physical attention-head pruning by gradient-based importance (Michel et al., 2019)."""

    keep_heads: int = 2
    """Heads kept in every layer (1 <= keep_heads <= heads per layer)."""
    batches: int = 8
    """Training batches used to estimate head importance."""

    def __post_init__(self):
        if self.keep_heads < 1 or self.batches < 1:
            raise ValueError("keep_heads and batches must be >= 1")


@register("heads", HeadsParams, zeroing=False, check=check_heads, target="keep_heads", batches="batches")
def heads(model: torch.nn.Module, params: HeadsParams, context: PruneContext) -> dict:
    """Keep the ``params.keep_heads`` most important heads of every layer, physically."""
    counts = heads_per_layer(model)
    if not context.data:
        raise PipelineError("prune.heads needs training batches to estimate head importance")
    scores = head_importance(model, context.data[: params.batches], context.loss_fn)
    return prune_top_heads_(model, scores, counts, params.keep_heads)
