"""Importance estimates of attention heads, FFN neurons and whole layers (for the structured methods)."""

from __future__ import annotations

import torch

from pipeline.data.features import Batch
from pipeline.models import families
from pipeline.models.structure import heads_per_layer, intermediate_per_layer
from pipeline.prune import LossFn


def head_importance(model: torch.nn.Module, data: list[Batch], loss_fn: LossFn) -> torch.Tensor:
    """Gradient-based head importance ``I_h = sum_batches |dL/dxi_h|`` (Michel et al., 2019).

    Each head's output is multiplied by a gate ``xi_h = 1`` where the attention output projection reads it;
    the gradient of the task loss w.r.t. the gate measures how much the loss depends on the head. Scores are
    L2-normalised per layer, as in the paper.

    Returns:
        ``(L, H_max)`` float tensor; entries past a layer's head count are ``-inf``.
    """
    family = families.of(model)
    counts = heads_per_layer(model)
    modules = [family.attention_output(layer) for layer in family.layers(model)]
    return head_scores(gate_importance(model, modules, counts, data, loss_fn), counts)


def head_scores(per_layer: list[torch.Tensor], counts: list[int]) -> torch.Tensor:
    """Per-layer head gate sums (one ``(h_i,)`` tensor per layer, ``h_i = counts[i]``) as the ``(L, H_max)``
    table of :func:`head_importance`: each layer's row L2-normalised, entries past its head count ``-inf``."""
    scores = torch.zeros(len(counts), max(counts))
    for i, score in enumerate(per_layer):
        scores[i, : score.numel()] = score
    for i, h in enumerate(counts):
        norm = scores[i, :h].norm()
        scores[i, :h] /= norm if norm > 0 else 1.0
        scores[i, h:] = float("-inf")
    return scores


def head_and_neuron_importance(model: torch.nn.Module, data: list[Batch],
                               loss_fn: LossFn) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """:func:`head_importance` and the FFN neurons' first-order importance of the same model, in one pass.

    One gate per head (on the attention output projection's input) and one per neuron (on the FFN output
    projection's input) are all 1, so the forward is the model's own and each gate's gradient is what a pass
    for that kind of unit alone gives (:func:`gate_importance`).

    Returns:
        ``(heads, neurons)``: heads as :func:`head_importance` (``(L, H_max)``, L2-normalised per layer,
        ``-inf`` past a layer's head count); neurons one ``(I_i,)`` tensor of ``sum_batches |dL/dg|`` per layer,
        ``I_i`` its current intermediate size.
    """
    family = families.of(model)
    layers = family.layers(model)
    counts, sizes = heads_per_layer(model), intermediate_per_layer(model)
    modules = [family.attention_output(layer) for layer in layers] + [family.ffn_out(layer) for layer in layers]
    scores = gate_importance(model, modules, counts + sizes, data, loss_fn)
    return head_scores(scores[: len(layers)], counts), scores[len(layers):]


def gate_importance(model: torch.nn.Module, modules: list[torch.nn.Module], sizes: list[int],
                     data: list[Batch], loss_fn: LossFn) -> list[torch.Tensor]:
    """``sum_batches |dL/dg|`` for a gate ``g = 1`` on the last dimension of each module's input.

    ``modules`` are the projections reading the units (the attention output projection for heads: input
    ``(B, T, H * d)``, gated per head; the FFN output projection for neurons: input ``(B, T, I)``), so the
    same hook serves every family's layout. The first-order (Taylor) estimate of the loss change when a unit
    is removed; for attention heads it is Michel et al.'s head importance, for FFN neurons the
    activation-times-gradient criterion. A module run several times per forward (ALBERT's shared layers)
    sums the gradients of every use.

    The gates and the sums stay on the modules' device (a GPU's gradients are not copied per batch).

    Returns:
        One ``(n,)`` float tensor per module, ``n`` its entry in ``sizes``, on the CPU.
    """
    devices = [next(m.parameters()).device for m in modules]
    gates = [torch.ones(n, requires_grad=True, device=d) for n, d in zip(sizes, devices)]
    hooks = []
    for module, gate in zip(modules, gates):

        def hook(mod, args, gate=gate):
            tensor = args[0]
            b, t, _ = tensor.shape
            g = gate.to(device=tensor.device, dtype=tensor.dtype)
            return ((tensor.view(b, t, g.numel(), -1) * g.view(1, 1, -1, 1)).view(b, t, -1), *args[1:])

        hooks.append(module.register_forward_pre_hook(hook))
    scores = [torch.zeros(n, device=d) for n, d in zip(sizes, devices)]
    was_training = model.training
    model.eval()  # no dropout: importance of the deterministic network
    # Only the gates' gradients are needed: the backward skips every weight gradient (about a third of its work)
    trainable = [p for p in model.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    try:
        for batch in data:
            model.zero_grad(set_to_none=True)
            for g in gates:
                g.grad = None
            loss_fn(model, batch).backward()
            for score, g in zip(scores, gates):
                score += g.grad.abs()
    finally:
        for h in hooks:
            h.remove()
        for p in trainable:
            p.requires_grad_(True)
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return [score.cpu() for score in scores]


@torch.no_grad()
def layer_importance(model: torch.nn.Module, data: list[Batch], loss_fn: LossFn) -> list[float]:
    """Mean loss increase over ``data`` when each encoder layer is skipped (its input passed through)."""
    layers = families.of(model).layers(model)
    was_training = model.training
    model.eval()
    try:
        base = sum(float(loss_fn(model, b)) for b in data) / len(data)
        deltas = []
        for layer in layers:
            def skip(mod, args, kwargs, output):
                hidden = args[0] if args else kwargs["hidden_states"]
                return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

            handle = layer.register_forward_hook(skip, with_kwargs=True)
            try:
                deltas.append(sum(float(loss_fn(model, b)) for b in data) / len(data) - base)
            finally:
                handle.remove()
    finally:
        model.train(was_training)
    return deltas


