"""Pruning method ``heads``: physical attention-head pruning by gradient-based importance (Michel et al., 2019)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.core.errors import PipelineError
from pipeline.models import families
from pipeline.models.structure import heads_per_layer, prune_heads_
from pipeline.prune import PruneContext, register
from pipeline.prune.importance import head_importance


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


def check_heads(model: torch.nn.Module, params: HeadsParams) -> None:
    """``keep_heads`` is at most the heads of every layer (a head-pruned model may have fewer)."""
    families.of(model).check_structural(model, "heads")
    counts = heads_per_layer(model)
    if params.keep_heads > min(counts):
        raise PipelineError(
            f"prune.heads.keep_heads={params.keep_heads} exceeds the heads per layer of the model ({counts})"
        )


@register("heads", HeadsParams, zeroing=False, check=check_heads, target="keep_heads", batches="batches")
def heads(model: torch.nn.Module, params: HeadsParams, context: PruneContext) -> dict:
    """Keep the ``params.keep_heads`` most important heads of every layer, physically."""
    counts = heads_per_layer(model)
    if not context.data:
        raise PipelineError("prune.heads needs training batches to estimate head importance")
    scores = head_importance(model, context.data[: params.batches], context.loss_fn)
    keep = {
        i: sorted(torch.topk(scores[i, :h], params.keep_heads).indices.tolist()) for i, h in enumerate(counts)
    }
    prune_heads_(model, keep)
    return {
        "keep_heads": params.keep_heads,
        "heads_kept": {str(i): k for i, k in keep.items()},
        "heads_per_layer": heads_per_layer(model),
        "importance": [[round(float(s), 6) for s in row[:h]] for row, h in zip(scores, counts)],
    }
