"""Pruning method ``soft_movement``: movement scores against a fixed threshold (Sanh et al., 2020).

Soft movement pruning (same paper) replaces the top-k by a fixed threshold: ``W * 1[S > tau]``, with
``lambda * mean(sigmoid(S))`` added to the loss. The penalty pulls every score down at the same rate,
the movement term ``dL/dW' * W`` holds up the scores of the weights the task needs, and the sparsity
(per matrix and overall) is whatever this balance leaves; ``lambda`` sets it, warming up on a cubic ramp.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.nn.utils import parametrize

from pipeline.config.args import TrainArgs
from pipeline.prune import PruneContext, register
from pipeline.prune.masks import prunable_linears, sparsity_report, thinned


@dataclass
class SoftMovementParams:
    """Soft movement pruning (Sanh et al., 2020): weights whose learned score exceeds a fixed threshold stay;
    a penalty on the scores makes the sparsity emerge (it is not set directly)."""

    threshold: float = 0.0
    """tau: a weight is kept while its score S > tau; one threshold for all matrices (global), so each
    matrix ends at its own sparsity."""
    score_init: float = 1.0
    """Initial score of every weight; above ``threshold`` so training starts from the dense model."""
    reg: float = 20.0
    """Final lambda of the loss term ``lambda * mean(sigmoid(S))``; larger gives higher sparsity."""
    begin: float = 0.0
    end: float = 0.7
    """lambda rises from 0 to ``reg`` on a cubic warm-up between these fractions of the training steps."""
    score_lr_scale: float = 100.0
    """Scores move this many times faster than the weights (they share the optimizer's learning rate)."""
    train: TrainArgs = field(default_factory=lambda: TrainArgs(epochs=1.0, lr=5e-4))

    def __post_init__(self):
        if self.score_init <= self.threshold:
            raise ValueError("score_init must be > threshold (every weight starts kept)")
        if self.reg < 0:
            raise ValueError("reg must be >= 0")
        if not 0 <= self.begin < self.end <= 1:
            raise ValueError("need 0 <= begin < end <= 1")
        if self.score_lr_scale <= 0:
            raise ValueError("score_lr_scale must be > 0")


class _ThresholdMask(torch.autograd.Function):
    """``1[scores > threshold]`` as a float mask; straight-through gradient to the scores."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor, threshold: float) -> torch.Tensor:
        return (scores > threshold).to(scores.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None


def threshold_mask(scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Binary keep-mask ``1[scores > threshold]`` (any shape), differentiable straight-through."""
    return _ThresholdMask.apply(scores, threshold)


def cubic_ramp(step: int, total: int, begin: float, end: float) -> float:
    """Fraction in [0, 1] of the final value after ``step`` of ``total`` steps: 0 before ``begin * total``,
    ``1 - (1 - p)^3`` at progress ``p`` between ``begin`` and ``end`` (fast at first), 1 after ``end * total``."""
    t0, t1 = begin * total, end * total
    if step <= t0:
        return 0.0
    if step >= t1:
        return 1.0
    return 1.0 - (1.0 - (step - t0) / (t1 - t0)) ** 3


class ThresholdScoredMask(torch.nn.Module):
    """Parametrization ``W -> W * 1[gain * raw > threshold]`` (soft movement pruning)."""

    def __init__(self, weight: torch.Tensor, init: float, gain: float, threshold: float):
        super().__init__()
        # Same scale trick as ScoredMask: effective scores move ``gain`` times faster than the weights.
        self.raw = torch.nn.Parameter(torch.full_like(weight.detach(), init / gain))
        self.gain, self.threshold = gain, threshold

    def scores(self) -> torch.Tensor:
        return self.raw * self.gain

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * threshold_mask(self.scores(), self.threshold)


class SoftMovementPruner:
    """Soft movement pruning: thresholded learned scores plus a scheduled score penalty.

    Use :meth:`penalty` inside the loss and the object itself as the after-step hook (it advances the
    ``lambda`` schedule); :meth:`start` sets the number of steps and returns the hook.
    """

    def __init__(self, params: SoftMovementParams, linears: dict[str, torch.nn.Linear]):
        self.params, self.linears = params, linears
        self.total, self.step, self.reg = 1, 0, 0.0
        self.masks: list[ThresholdScoredMask] = []
        for linear in linears.values():
            mask = ThresholdScoredMask(linear.weight, params.score_init, params.score_lr_scale, params.threshold)
            parametrize.register_parametrization(linear, "weight", mask)
            self.masks.append(mask)
        self.schedule: list[tuple[int, float, float]] = []  # (step, lambda, sparsity)

    def start(self, total_steps: int) -> "SoftMovementPruner":
        self.total = total_steps
        self._update()
        return self

    def penalty(self) -> torch.Tensor:
        """``lambda_t * mean(sigmoid(S))`` over every score of every matrix (a scalar tensor)."""
        total = sum(torch.sigmoid(m.scores()).sum() for m in self.masks)
        return self.reg * total / sum(m.raw.numel() for m in self.masks)

    @torch.no_grad()
    def sparsity(self) -> float:
        """Fraction of weights whose score is at or below the threshold (masked out now)."""
        pruned = sum(int((m.scores() <= m.threshold).sum()) for m in self.masks)
        return pruned / sum(m.raw.numel() for m in self.masks)

    def _update(self) -> None:
        p = self.params
        self.reg = p.reg * cubic_ramp(self.step, self.total, p.begin, p.end)
        if self.step % 10 == 0 or self.step == self.total:
            self.schedule.append((self.step, round(self.reg, 6), round(self.sparsity(), 6)))

    def __call__(self, model: torch.nn.Module) -> None:
        self.step += 1
        self._update()

    @torch.no_grad()
    def finish(self) -> None:
        """Bake ``W * 1[S > tau]`` into the weights and drop the parametrizations."""
        for linear in self.linears.values():
            parametrize.remove_parametrizations(linear, "weight", leave_parametrized=True)
@register("soft_movement", SoftMovementParams, zeroing=True, trains=True, target="reg")
def soft_movement(model: torch.nn.Module, params: SoftMovementParams, context: PruneContext) -> dict:
    """Fine-tune with thresholded learned scores and the ``lambda * mean(sigmoid(S))`` penalty in the loss;
    the sparsity reached is reported, not imposed."""
    pruner = SoftMovementPruner(params, prunable_linears(model))
    history = context.train(model, pruner.start, loss_fn=lambda m, b: context.loss_fn(m, b) + pruner.penalty())
    pruner.finish()
    return {"threshold": params.threshold, "reg": params.reg,
            "schedule": thinned(pruner.schedule),
            "history": history["history"], **sparsity_report(model)}
