"""Pruning method ``mask_learning``: static mask learning, the learned top-k score masks of movement pruning
with every weight frozen (as in static model pruning, SMP); see :mod:`pipeline.prune.scores`."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.prune import PruneContext, register
from pipeline.prune.scores import TopKScoreParams, train_with_scores


@dataclass
class MaskLearningParams(TopKScoreParams):
    """Static mask learning: the weights stay frozen, only the scores (hence the masks) are trained.

    The learned mask alone must recover the task (as in static model pruning, SMP); the distill stage then
    fine-tunes the weights under that fixed mask with KD.
    """

    score_lr_scale: float = 100.0


@register("mask_learning", MaskLearningParams, zeroing=True, trains=True, target="sparsity")
def mask_learning(model: torch.nn.Module, params: MaskLearningParams, context: PruneContext) -> dict:
    """Train only the score masks (weights frozen) down to ``params.sparsity`` per matrix."""
    return train_with_scores(model, params, context.train, freeze_weights=True)
