"""Pruning method ``movement``: movement pruning, top-k variant (Sanh et al., 2020), while fine-tuning.

Weights and their learned scores train together; see :mod:`pipeline.prune.scores`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.prune import PruneContext, register
from pipeline.prune.scores import TopKScoreParams, train_with_scores


@dataclass
class MovementParams(TopKScoreParams):
    """Movement pruning: learned scores decide which weights stay while the weights keep training."""

    score_lr_scale: float = 20.0


@register("movement", MovementParams, zeroing=True, trains=True, target="sparsity")
def movement(model: torch.nn.Module, params: MovementParams, context: PruneContext) -> dict:
    """Fine-tune with learned top-k score masks down to ``params.sparsity`` per matrix."""
    return train_with_scores(model, params, context.train, freeze_weights=False)
