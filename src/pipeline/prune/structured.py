"""Steps shared by the one-shot structured methods (``heads``, ``ffn``, ``heads_ffn``): the early check of a
``keep_heads``, and keeping the top-scoring heads or FFN neurons of every layer physically.

Methods are plug-ins found by name and never import each other (a stage's DVC deps are its own method's file
plus these shared modules), so what two methods share lives here.
"""

from __future__ import annotations

import torch

from pipeline.core.errors import PipelineError
from pipeline.models import families
from pipeline.models.structure import FFN_ATTR, heads_per_layer, intermediate_per_layer, prune_ffn_, prune_heads_


def check_heads(model: torch.nn.Module, params, method: str = "heads") -> None:
    """``params.keep_heads`` is at most the heads of every layer (a head-pruned model may have fewer).

    Args:
        params: any method's params with a ``keep_heads`` field.
        method: the section the error names (``prune.<method>.keep_heads``).

    Raises:
        PipelineError: ``keep_heads`` above a layer's heads, or a family that refuses per-layer head pruning
            (ALBERT's shared layers).
    """
    families.of(model).check_structural(model, "heads")
    counts = heads_per_layer(model)
    if params.keep_heads > min(counts):
        raise PipelineError(
            f"prune.{method}.keep_heads={params.keep_heads} exceeds the heads per layer of the model ({counts})"
        )


def prune_top_heads_(model: torch.nn.Module, scores: torch.Tensor, counts: list[int], keep_heads: int) -> dict:
    """Keep the ``keep_heads`` highest-scoring heads of every layer, physically; returns the ``heads`` report.

    Args:
        scores: ``(L, H_max)`` head importance (:func:`pipeline.prune.importance.head_importance`).
        counts: heads of every layer before pruning (``L`` ints).

    Returns:
        ``keep_heads``, ``heads_kept`` (layer -> kept head indices), ``heads_per_layer`` (after),
        ``importance`` (``scores`` per layer, rounded to 6 decimals).
    """
    keep = {i: sorted(torch.topk(scores[i, :h], keep_heads).indices.tolist()) for i, h in enumerate(counts)}
    prune_heads_(model, keep)
    return {
        "keep_heads": keep_heads,
        "heads_kept": {str(i): k for i, k in keep.items()},
        "heads_per_layer": heads_per_layer(model),
        "importance": [[round(float(s), 6) for s in row[:h]] for row, h in zip(scores, counts)],
    }


def prune_top_neurons_(model: torch.nn.Module, scores: list[torch.Tensor], sizes: list[int],
                       keep_ratio: float) -> dict:
    """Keep the ``max(1, round(keep_ratio * n))`` highest-scoring of the ``n`` FFN neurons of every layer,
    physically; returns the ``ffn`` report (``keep_ratio``, ``intermediate_per_layer`` after).

    Args:
        scores: one ``(n_i,)`` importance tensor per layer (:func:`pipeline.prune.importance.gate_importance`).
        sizes: neurons of every layer before pruning (``n_i``).
    """
    keep = {}
    for i, (n, score) in enumerate(zip(sizes, scores)):
        k = max(1, round(keep_ratio * n))
        keep[i] = sorted(torch.topk(score, k).indices.tolist())
    prune_ffn_(model, keep)
    return {"keep_ratio": keep_ratio, FFN_ATTR: intermediate_per_layer(model)}
