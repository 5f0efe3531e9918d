"""Pruning method ``layers``: layer dropping by measured importance (the result is a plain, shallower model)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.core.errors import PipelineError
from pipeline.models import families
from pipeline.models.structure import drop_layers_
from pipeline.prune import PruneContext, register
from pipeline.prune.importance import layer_importance


@dataclass
class LayersParams:
    """Layer dropping: keep the first and last layer, drop the least important middle layers."""

    keep_layers: int = 2
    """Encoder layers kept (>= 2 and <= the model's layer count)."""
    batches: int = 8
    """Training batches used to measure each layer's importance (loss increase when it is skipped)."""

    def __post_init__(self):
        if self.keep_layers < 2 or self.batches < 1:
            raise ValueError("keep_layers must be >= 2 and batches >= 1")


def check_layers(model: torch.nn.Module, params: LayersParams) -> None:
    """``keep_layers`` is at most the model's layer count."""
    families.of(model).check_structural(model, "layers")
    count = len(families.of(model).layers(model))
    if params.keep_layers > count:
        raise PipelineError(f"prune.layers.keep_layers={params.keep_layers} exceeds the model's {count} layers")


@register("layers", LayersParams, zeroing=False, check=check_layers, target="keep_layers", batches="batches")
def layers(model: torch.nn.Module, params: LayersParams, context: PruneContext) -> dict:
    """Drop middle layers by measured importance until ``keep_layers`` remain (first and last kept)."""
    count = len(families.of(model).layers(model))
    if not context.data:
        raise PipelineError("prune.layers needs training batches to measure layer importance")
    importance = layer_importance(model, context.data[: params.batches], context.loss_fn)
    middle = sorted(range(1, count - 1), key=lambda i: importance[i], reverse=True)
    keep = sorted([0, count - 1, *middle[: params.keep_layers - 2]])
    drop_layers_(model, keep)
    return {"keep_layers": params.keep_layers, "layers_kept": keep,
            "importance": [round(d, 6) for d in importance], "num_hidden_layers": len(keep)}
