"""Pruning methods, registered by name; each prunes a model in place and reports what it removed.

- ``magnitude``: unstructured one-shot magnitude pruning of the encoder's Linear weights.
- ``heads``: physical attention-head pruning by gradient-based importance (Michel et al., 2019).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from pipeline.errors import PipelineError
from pipeline.features import Batch
from pipeline.params import HeadsParams, MagnitudeParams
from pipeline.structure import heads_per_layer, prune_heads_

LossFn = Callable[[torch.nn.Module, Batch], torch.Tensor]
PruneFn = Callable[[torch.nn.Module, object, list[Batch], LossFn], dict]
METHODS: dict[str, tuple[type, PruneFn]] = {}


def register(name: str, params_type: type) -> Callable[[PruneFn], PruneFn]:
    """Register a pruning method and the params dataclass it reads (``prune.<name>``)."""

    def add(fn: PruneFn) -> PruneFn:
        METHODS[name] = (params_type, fn)
        return fn

    return add


def prunable_weights(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The encoder's Linear weight matrices by name (embeddings, LayerNorms and heads are left dense)."""
    encoder = model.base_model.encoder
    return {
        f"encoder.{name}.weight": module.weight
        for name, module in encoder.named_modules()
        if isinstance(module, torch.nn.Linear)
    }


def magnitude_masks(weights: dict[str, torch.Tensor], sparsity: float, scope: str = "global") -> dict[str, torch.Tensor]:
    """Keep-masks that zero exactly ``round(sparsity * n)`` smallest-magnitude entries.

    Args:
        weights: name -> tensor (any shapes).
        sparsity: fraction to remove, in [0, 1).
        scope: ``global`` ranks all entries together; ``layer`` ranks each tensor separately.

    Returns:
        name -> bool tensor of the same shape, True where the weight is kept. Ties are broken by position,
        so the count is exact.
    """
    if not 0 <= sparsity < 1:
        raise PipelineError(f"sparsity must be in [0, 1), got {sparsity}")

    def keep_mask(flat: torch.Tensor) -> torch.Tensor:
        n_prune = round(sparsity * flat.numel())
        mask = torch.ones(flat.numel(), dtype=torch.bool)
        if n_prune:
            # stable sort: equal magnitudes are pruned in index order, deterministically
            order = torch.sort(flat.abs(), stable=True).indices
            mask[order[:n_prune]] = False
        return mask

    if scope == "layer":
        return {k: keep_mask(w.detach().flatten().cpu()).view(w.shape) for k, w in weights.items()}
    flat = torch.cat([w.detach().flatten().cpu() for w in weights.values()])
    mask = keep_mask(flat)
    out, offset = {}, 0
    for k, w in weights.items():
        out[k] = mask[offset : offset + w.numel()].view(w.shape)
        offset += w.numel()
    return out


def zero_masks(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Keep-masks of the prunable weights that already contain zeros (to preserve them while training)."""
    return {k: (w != 0) for k, w in prunable_weights(model).items() if bool((w == 0).any())}


@torch.no_grad()
def apply_masks_(model: torch.nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Multiply the named prunable weights by their masks, in place."""
    weights = prunable_weights(model)
    for name, mask in masks.items():
        weights[name].mul_(mask.to(weights[name].device, weights[name].dtype))


def sparsity_report(model: torch.nn.Module) -> dict:
    """Achieved sparsity of the prunable weights: overall and per tensor."""
    weights = prunable_weights(model)
    zeros = {k: int((w == 0).sum()) for k, w in weights.items()}
    total = sum(w.numel() for w in weights.values())
    return {
        "sparsity": sum(zeros.values()) / total,
        "per_tensor": {k: zeros[k] / weights[k].numel() for k in weights},
    }


@register("magnitude", MagnitudeParams)
def magnitude(model: torch.nn.Module, params: MagnitudeParams, data: list[Batch], loss_fn: LossFn) -> dict:
    """One-shot magnitude pruning to ``params.sparsity`` (no data needed)."""
    apply_masks_(model, magnitude_masks(prunable_weights(model), params.sparsity, params.scope))
    return {"target_sparsity": params.sparsity, "scope": params.scope, **sparsity_report(model)}


def head_importance(model: torch.nn.Module, data: list[Batch], loss_fn: LossFn) -> torch.Tensor:
    """Gradient-based head importance ``I_h = sum_batches |dL/dxi_h|`` (Michel et al., 2019).

    Each head's output is multiplied by a gate ``xi_h = 1`` through a forward hook; the gradient of the
    task loss w.r.t. the gate measures how much the loss depends on the head. Scores are L2-normalised per
    layer, as in the paper.

    Returns:
        ``(L, H_max)`` float tensor; entries past a layer's head count are ``-inf``.
    """
    layers = model.base_model.encoder.layer
    counts = heads_per_layer(model)
    gates = [torch.ones(h, requires_grad=True) for h in counts]
    hooks = []
    for layer, gate in zip(layers, gates):

        def hook(module, inputs, output, gate=gate):
            ctx = output[0]  # (B, T, heads * head_size)
            b, t, _ = ctx.shape
            gated = (ctx.view(b, t, gate.numel(), -1) * gate.to(device=ctx.device, dtype=ctx.dtype).view(1, 1, -1, 1)).view(b, t, -1)
            return (gated, *output[1:])

        hooks.append(layer.attention.self.register_forward_hook(hook))
    scores = torch.zeros(len(layers), max(counts))
    was_training = model.training
    model.eval()  # no dropout: importance of the deterministic network
    try:
        for batch in data:
            model.zero_grad(set_to_none=True)
            for g in gates:
                g.grad = None
            loss_fn(model, batch).backward()
            for i, g in enumerate(gates):
                scores[i, : g.numel()] += g.grad.abs()
    finally:
        for h in hooks:
            h.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    for i, h in enumerate(counts):
        norm = scores[i, :h].norm()
        scores[i, :h] /= norm if norm > 0 else 1.0
        scores[i, h:] = float("-inf")
    return scores


@register("heads", HeadsParams)
def heads(model: torch.nn.Module, params: HeadsParams, data: list[Batch], loss_fn: LossFn) -> dict:
    """Keep the ``params.keep_heads`` most important heads of every layer, physically."""
    counts = heads_per_layer(model)
    if params.keep_heads > min(counts):
        raise PipelineError(
            f"prune.heads.keep_heads={params.keep_heads} exceeds the heads per layer of the model ({counts})"
        )
    if not data:
        raise PipelineError("prune.heads needs training batches to estimate head importance")
    scores = head_importance(model, data[: params.batches], loss_fn)
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


def prune_(model: torch.nn.Module, method: str, params: object, data: list[Batch], loss_fn: LossFn) -> dict:
    """Prune ``model`` in place with a registered method; returns its report for ``pipeline.json``."""
    if method not in METHODS:
        raise PipelineError(f"unknown pruning method '{method}' (known: {', '.join(sorted(METHODS))})")
    return METHODS[method][1](model, params, data, loss_fn)
