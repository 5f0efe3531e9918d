"""Pruning method ``heads_ffn``: attention heads and FFN neurons pruned together, physically, both ranked on the
unpruned model.

Heads are ranked by Michel et al. (2019)'s gradient importance, neurons by the first-order (Taylor) importance
of Molchanov et al. (2019); one pass over the same batches gives both (:mod:`.importance`). CoFi (Xia et al.,
2022) prunes heads and FFN neurons together too, with learned masks instead of a one-shot importance. Heads
alone leave the FFN, about two thirds of an encoder layer's FLOPs, untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.core.errors import PipelineError
from pipeline.models import families
from pipeline.models.structure import heads_per_layer, intermediate_per_layer
from pipeline.prune import PruneContext, register
from pipeline.prune.importance import head_and_neuron_importance
from pipeline.prune.structured import check_heads, prune_top_heads_, prune_top_neurons_


@dataclass
class HeadsFFNParams:
    """Attention heads and FFN neurons pruned together, physically (``prune.heads_ffn``)."""

    keep_heads: int = 2
    """Heads kept in every layer (1 <= keep_heads <= heads per layer)."""
    keep_ratio: float = 0.5
    """Fraction of every layer's intermediate neurons kept, in (0, 1]."""
    batches: int = 8
    """Training batches used to estimate head and neuron importance (one pass for both)."""

    def __post_init__(self):
        if self.keep_heads < 1 or self.batches < 1:
            raise ValueError("keep_heads and batches must be >= 1")
        if not 0 < self.keep_ratio <= 1:
            raise ValueError("keep_ratio must be in (0, 1]")


def check_heads_ffn(model: torch.nn.Module, params: HeadsFFNParams) -> None:
    """The model's family allows per-layer head and FFN pruning, and ``keep_heads`` is at most the heads of
    every layer (:func:`pipeline.prune.structured.check_heads`)."""
    check_heads(model, params, "heads_ffn")
    families.of(model).check_structural(model, "ffn")


@register("heads_ffn", HeadsFFNParams, zeroing=False, check=check_heads_ffn, target="keep_ratio", batches="batches")
def heads_ffn(model: torch.nn.Module, params: HeadsFFNParams, context: PruneContext) -> dict:
    """Keep the ``keep_heads`` most important heads and the ``max(1, round(keep_ratio * I))`` most important of
    the ``I`` FFN neurons of every layer, physically; both importances are measured before anything is pruned.

    Shapes: layer ``i`` goes from ``(h_i, I_i)`` heads and neurons to ``(keep_heads, max(1, round(keep_ratio *
    I_i)))``; ``config.heads_per_layer`` and ``config.intermediate_per_layer`` record them. The head size and the
    hidden size stay.

    Returns:
        The reports of ``heads`` and ``ffn`` merged: ``keep_heads``, ``heads_kept`` (layer -> kept head indices),
        ``heads_per_layer``, ``importance`` (per-layer head scores, L2-normalised), ``keep_ratio``,
        ``intermediate_per_layer``. Neuron scores are not reported (thousands per layer at real sizes), as in
        ``ffn``.

    Raises:
        PipelineError: no training batches in ``context.data``; ``keep_heads`` above a layer's heads or a family
            that refuses per-layer pruning (ALBERT's shared layers) is refused by :func:`check_heads_ffn` first.
    """
    if not context.data:
        raise PipelineError("prune.heads_ffn needs training batches to estimate head and neuron importance")
    counts, sizes = heads_per_layer(model), intermediate_per_layer(model)
    heads, neurons = head_and_neuron_importance(model, context.data[: params.batches], context.loss_fn)
    report = prune_top_heads_(model, heads, counts, params.keep_heads)
    return {**report, **prune_top_neurons_(model, neurons, sizes, params.keep_ratio)}
