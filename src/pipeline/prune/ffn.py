"""Pruning method ``ffn``: physical feed-forward neuron pruning by first-order (Taylor) importance."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.core.errors import PipelineError
from pipeline.models import families
from pipeline.models.structure import intermediate_per_layer
from pipeline.prune import PruneContext, register
from pipeline.prune.importance import gate_importance
from pipeline.prune.structured import prune_top_neurons_


@dataclass
class FFNParams:
    """Physical feed-forward neuron pruning by first-order (Taylor) importance."""

    keep_ratio: float = 0.5
    """Fraction of every layer's intermediate neurons kept, in (0, 1]."""
    batches: int = 8
    """Training batches used to estimate neuron importance."""

    def __post_init__(self):
        if not 0 < self.keep_ratio <= 1:
            raise ValueError("keep_ratio must be in (0, 1]")
        if self.batches < 1:
            raise ValueError("batches must be >= 1")


@register("ffn", FFNParams, zeroing=False, target="keep_ratio", batches="batches")
def ffn(model: torch.nn.Module, params: FFNParams, context: PruneContext) -> dict:
    """Keep the ``keep_ratio`` most important intermediate neurons of every layer, physically."""
    if not context.data:
        raise PipelineError("prune.ffn needs training batches to estimate neuron importance")
    family = families.of(model)
    family.check_structural(model, "ffn")
    sizes = intermediate_per_layer(model)
    modules = [family.ffn_out(layer) for layer in family.layers(model)]
    scores = gate_importance(model, modules, sizes, context.data[: params.batches], context.loss_fn)
    return prune_top_neurons_(model, scores, sizes, params.keep_ratio)
