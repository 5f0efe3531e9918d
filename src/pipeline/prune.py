"""Pruning methods, registered by name; each prunes a model in place and reports what it removed.

- ``magnitude``: unstructured one-shot magnitude pruning of the encoder's Linear weights.
- ``heads``: physical attention-head pruning by gradient-based importance (Michel et al., 2019).
- ``ffn``: physical feed-forward neuron pruning by first-order (Taylor) importance.
- ``layers``: layer dropping; the first and last layers stay, the middle layers whose removal raises the
  loss least go, and the result is a plain, shallower BERT.
- ``nm``: semi-structured N:M masks (2:4 by default) along the input dimension of the encoder's Linears.
- ``movement``: movement pruning (top-k of learned scores) while fine-tuning (Sanh et al., 2020).
- ``mask_learning``: the same learned top-k masks with the weights frozen (static mask learning).
- ``soft_movement``: movement scores against a fixed threshold, with a score penalty whose weight sets the
  sparsity (Sanh et al., 2020).
- ``l0``: hard-concrete gates with an expected-L0 penalty while fine-tuning (Louizos et al., 2018).
- ``gradual``: magnitude pruning while fine-tuning, sparsity raised on the cubic schedule of Zhu & Gupta
  (2017), masks frozen once the target is reached.

Unstructured and N:M methods zero weights in place (the shapes stay; distillation keeps the zeros);
structured methods shrink the tensors and record the new shapes in the config.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from pipeline.errors import PipelineError
from pipeline.features import Batch
from pipeline.params import (
    FFNParams,
    GradualParams,
    HeadsParams,
    L0Params,
    LayersParams,
    MagnitudeParams,
    MaskLearningParams,
    MovementParams,
    NMParams,
    SoftMovementParams,
)
from pipeline.structure import FFN_ATTR, HEADS_ATTR, heads_per_layer, intermediate_per_layer, prune_ffn_, prune_heads_

LossFn = Callable[[torch.nn.Module, Batch], torch.Tensor]
# Methods that zero weights in place (shapes unchanged): their artifacts are stored compactly.
ZEROING = {"magnitude", "nm", "gradual", "movement", "mask_learning", "soft_movement", "l0"}
# Methods that prune while fine-tuning; the stage passes them a training callable.
TRAINING = {"gradual", "movement", "mask_learning", "soft_movement", "l0"}
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
    per_layer = _gate_importance(model, [layer.attention.self for layer in layers], counts, data, loss_fn)
    scores = torch.zeros(len(layers), max(counts))
    for i, score in enumerate(per_layer):
        scores[i, : score.numel()] = score
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


def nm_masks(weights: dict[str, torch.Tensor], n: int, m: int) -> dict[str, torch.Tensor]:
    """Keep-masks with exactly ``n`` of every ``m`` consecutive weights along the input dimension kept.

    The largest magnitudes of each group are kept (ties by position). Tensors whose input dimension is not
    a multiple of ``m`` are rejected: the pattern must cover every weight for sparse kernels to use it.
    """
    out = {}
    for name, w in weights.items():
        rows, cols = w.shape
        if cols % m:
            raise PipelineError(f"{name}: input dimension {cols} is not a multiple of m={m}")
        groups = w.detach().abs().cpu().reshape(rows, cols // m, m)
        # stable ranking: sort descending by magnitude, keep the first n of each group
        order = torch.sort(groups, dim=-1, descending=True, stable=True).indices
        mask = torch.zeros_like(groups, dtype=torch.bool)
        mask.scatter_(-1, order[..., :n], True)
        out[name] = mask.reshape(rows, cols)
    return out


@register("nm", NMParams)
def nm(model: torch.nn.Module, params: NMParams, data: list[Batch], loss_fn: LossFn) -> dict:
    """One-shot N:M magnitude pruning (``n`` of every ``m`` weights kept; 2:4 = 50% sparsity)."""
    apply_masks_(model, nm_masks(prunable_weights(model), params.n, params.m))
    return {"pattern": f"{params.n}:{params.m}", **sparsity_report(model)}


def _gate_importance(model: torch.nn.Module, modules: list[torch.nn.Module], sizes: list[int],
                     data: list[Batch], loss_fn: LossFn) -> list[torch.Tensor]:
    """``sum_batches |dL/dg|`` for a gate ``g = 1`` on the last dimension of each module's output.

    The first-order (Taylor) estimate of the loss change when a unit is removed; for attention heads it is
    Michel et al.'s head importance, for FFN neurons the activation-times-gradient criterion.
    """
    gates = [torch.ones(n, requires_grad=True) for n in sizes]
    hooks = []
    for module, gate in zip(modules, gates):

        def hook(mod, inputs, output, gate=gate):
            tensor = output[0] if isinstance(output, tuple) else output
            b, t, _ = tensor.shape
            g = gate.to(device=tensor.device, dtype=tensor.dtype)
            gated = (tensor.view(b, t, g.numel(), -1) * g.view(1, 1, -1, 1)).view(b, t, -1)
            return (gated, *output[1:]) if isinstance(output, tuple) else gated

        hooks.append(module.register_forward_hook(hook))
    scores = [torch.zeros(n) for n in sizes]
    was_training = model.training
    model.eval()  # no dropout: importance of the deterministic network
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
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return scores


@register("ffn", FFNParams)
def ffn(model: torch.nn.Module, params: FFNParams, data: list[Batch], loss_fn: LossFn) -> dict:
    """Keep the ``keep_ratio`` most important intermediate neurons of every layer, physically."""
    if not data:
        raise PipelineError("prune.ffn needs training batches to estimate neuron importance")
    sizes = intermediate_per_layer(model)
    layers = model.base_model.encoder.layer
    scores = _gate_importance(model, [layer.intermediate for layer in layers], sizes, data[: params.batches], loss_fn)
    keep = {}
    for i, (n, score) in enumerate(zip(sizes, scores)):
        k = max(1, round(params.keep_ratio * n))
        keep[i] = sorted(torch.topk(score, k).indices.tolist())
    prune_ffn_(model, keep)
    return {"keep_ratio": params.keep_ratio, FFN_ATTR: intermediate_per_layer(model)}


@torch.no_grad()
def layer_importance(model: torch.nn.Module, data: list[Batch], loss_fn: LossFn) -> list[float]:
    """Mean loss increase over ``data`` when each encoder layer is skipped (its input passed through)."""
    layers = model.base_model.encoder.layer
    was_training = model.training
    model.eval()
    try:
        base = sum(float(loss_fn(model, b)) for b in data) / len(data)
        deltas = []
        for layer in layers:
            def skip(mod, args, output):
                return (args[0], *output[1:]) if isinstance(output, tuple) else args[0]

            handle = layer.register_forward_hook(skip)
            try:
                deltas.append(sum(float(loss_fn(model, b)) for b in data) / len(data) - base)
            finally:
                handle.remove()
    finally:
        model.train(was_training)
    return deltas


def drop_layers_(model: torch.nn.Module, keep: list[int]) -> None:
    """Keep only the encoder layers at ``keep`` (sorted, renumbered 0..k-1), in place.

    ``config.num_hidden_layers`` and any per-layer shape lists (heads, FFN sizes) follow, so the saved model
    reloads as a plain, shallower BERT.
    """
    encoder = model.base_model.encoder
    count = len(encoder.layer)
    keep = sorted(set(keep))
    if not keep or keep[0] < 0 or keep[-1] >= count:
        raise PipelineError(f"layers to keep {keep} are out of range for a {count}-layer model")
    encoder.layer = torch.nn.ModuleList([encoder.layer[i] for i in keep])
    for new_index, layer in enumerate(encoder.layer):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index
    config = model.config
    config.num_hidden_layers = len(keep)
    for attr in (HEADS_ATTR, FFN_ATTR):
        sizes = getattr(config, attr, None)
        if sizes is not None:
            setattr(config, attr, [sizes[i] for i in keep])


@register("layers", LayersParams)
def layers(model: torch.nn.Module, params: LayersParams, data: list[Batch], loss_fn: LossFn) -> dict:
    """Drop middle layers by measured importance until ``keep_layers`` remain (first and last kept)."""
    count = len(model.base_model.encoder.layer)
    if params.keep_layers > count:
        raise PipelineError(f"prune.layers.keep_layers={params.keep_layers} exceeds the model's {count} layers")
    if not data:
        raise PipelineError("prune.layers needs training batches to measure layer importance")
    importance = layer_importance(model, data[: params.batches], loss_fn)
    middle = sorted(range(1, count - 1), key=lambda i: importance[i], reverse=True)
    keep = sorted([0, count - 1, *middle[: params.keep_layers - 2]])
    drop_layers_(model, keep)
    return {"keep_layers": params.keep_layers, "layers_kept": keep,
            "importance": [round(d, 6) for d in importance], "num_hidden_layers": len(keep)}


def cubic_sparsity(step: int, total: int, params: GradualParams) -> float:
    """Target sparsity after ``step`` of ``total`` optimizer steps (Zhu & Gupta, 2017):

    ``s_f + (s_i - s_f) * (1 - (t - t_0) / (t_1 - t_0))^3`` between ``t_0 = begin * total`` and
    ``t_1 = end * total``; ``s_i`` before, ``s_f`` after.
    """
    t0, t1 = params.begin * total, params.end * total
    if step <= t0:
        return params.initial_sparsity
    if step >= t1:
        return params.sparsity
    progress = (step - t0) / (t1 - t0)
    return params.sparsity + (params.initial_sparsity - params.sparsity) * (1 - progress) ** 3


class GradualPruner:
    """``after_step`` hook for the training loop: re-prunes every ``frequency`` steps on the cubic
    schedule and re-applies the current masks after every other step (pruned weights stay zero)."""

    def __init__(self, model: torch.nn.Module, params: GradualParams, total_steps: int):
        self.params, self.total, self.step = params, total_steps, 0
        self.masks: dict[str, torch.Tensor] = {}
        self.schedule: list[tuple[int, float]] = []
        self._update(model)

    def _update(self, model: torch.nn.Module) -> None:
        target = cubic_sparsity(self.step, self.total, self.params)
        if target > 0:
            weights = prunable_weights(model)
            self.masks = {k: m.to(w.device) for (k, m), w in
                          zip(magnitude_masks(weights, target, self.params.scope).items(), weights.values())}
        self.schedule.append((self.step, round(target, 6)))

    def __call__(self, model: torch.nn.Module) -> None:
        self.step += 1
        end = self.params.end * self.total
        if self.step % self.params.frequency == 0 and self.step <= end + self.params.frequency:
            self._update(model)
        if self.masks:
            apply_masks_(model, self.masks)


@register("gradual", GradualParams)
def gradual(model: torch.nn.Module, params: GradualParams, data: list[Batch], loss_fn: LossFn,
            train=None) -> dict:
    """Fine-tune while pruning to ``params.sparsity`` on the cubic schedule (needs ``train``)."""
    if train is None:
        raise PipelineError("prune.gradual prunes while training: the stage must provide training")
    history = train(model, lambda total: GradualPruner(model, params, total))
    pruner = history.pop("pruner")
    # The last scheduled update may fall short of the target by rounding of steps: enforce it exactly.
    apply_masks_(model, magnitude_masks(prunable_weights(model), params.sparsity, params.scope))
    return {"target_sparsity": params.sparsity, "schedule": pruner.schedule[:: max(1, len(pruner.schedule) // 20)],
            "history": history["history"], **sparsity_report(model)}


@register("mask_learning", MaskLearningParams)
@register("movement", MovementParams)
def movement(model: torch.nn.Module, params: MovementParams, data: list[Batch], loss_fn: LossFn,
             train=None) -> dict:
    """Fine-tune with learned top-k score masks down to ``params.sparsity`` per matrix (needs ``train``)."""
    from pipeline.movement import MovementPruner

    if train is None:
        name = "mask_learning" if isinstance(params, MaskLearningParams) else "movement"
        raise PipelineError(f"prune.{name} prunes while training: the stage must provide training")
    encoder = model.base_model.encoder
    linears = {name: m for name, m in encoder.named_modules() if isinstance(m, torch.nn.Linear)}
    freeze = isinstance(params, MaskLearningParams)
    history = train(model, lambda total: MovementPruner(model, params, total, linears, freeze_weights=freeze))
    pruner = history.pop("pruner")
    pruner.finish(params.sparsity)
    return {"target_sparsity": params.sparsity, "schedule": pruner.schedule[:: max(1, len(pruner.schedule) // 20)],
            "history": history["history"], **sparsity_report(model)}


def _encoder_linears(model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    return {name: m for name, m in model.base_model.encoder.named_modules() if isinstance(m, torch.nn.Linear)}


@register("soft_movement", SoftMovementParams)
def soft_movement(model: torch.nn.Module, params: SoftMovementParams, data: list[Batch], loss_fn: LossFn,
                  train=None) -> dict:
    """Fine-tune with thresholded learned scores and the ``lambda * mean(sigmoid(S))`` penalty in the loss;
    the sparsity reached is reported, not imposed (needs ``train``)."""
    from pipeline.movement import SoftMovementPruner

    if train is None:
        raise PipelineError("prune.soft_movement prunes while training: the stage must provide training")
    pruner = SoftMovementPruner(params, _encoder_linears(model))
    history = train(model, pruner.start, loss_fn=lambda m, b: loss_fn(m, b) + pruner.penalty())
    pruner.finish()
    return {"threshold": params.threshold, "reg": params.reg,
            "schedule": pruner.schedule[:: max(1, len(pruner.schedule) // 20)],
            "history": history["history"], **sparsity_report(model)}


@register("l0", L0Params)
def l0(model: torch.nn.Module, params: L0Params, data: list[Batch], loss_fn: LossFn, train=None) -> dict:
    """Fine-tune with hard-concrete gates and the expected-L0 penalty in the loss, then bake the
    deterministic gates into the weights (needs ``train``)."""
    from pipeline.l0 import L0Pruner

    if train is None:
        raise PipelineError("prune.l0 prunes while training: the stage must provide training")
    pruner = L0Pruner(params, _encoder_linears(model))
    history = train(model, pruner.start, loss_fn=lambda m, b: loss_fn(m, b) + pruner.penalty())
    expected = 1.0 - float(pruner.expected_density().detach())
    gates = pruner.finish()
    return {"penalty": params.penalty, "target": params.target, "expected_sparsity": round(expected, 6), **gates,
            "schedule": pruner.schedule[:: max(1, len(pruner.schedule) // 20)],
            "history": history["history"], **sparsity_report(model)}


def prune_(model: torch.nn.Module, method: str, params: object, data: list[Batch], loss_fn: LossFn,
           train=None) -> dict:
    """Prune ``model`` in place with a registered method; returns its report for ``pipeline.json``.

    Args:
        train: for methods that prune while training (:data:`TRAINING`): a callable
            ``(model, make_hook, loss_fn=None) -> {"history": [...], "pruner": hook}`` that fine-tunes
            ``model`` on the task, building its after-step hook with ``make_hook(total_steps)``; methods
            with a penalty pass ``loss_fn`` (task loss plus their term) in place of the task loss.
    """
    if method not in METHODS:
        raise PipelineError(f"unknown pruning method '{method}' (known: {', '.join(sorted(METHODS))})")
    if method in TRAINING:
        return METHODS[method][1](model, params, data, loss_fn, train=train)
    return METHODS[method][1](model, params, data, loss_fn)
