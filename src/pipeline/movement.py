"""Movement pruning, top-k variant (Sanh et al., 2020), as weight parametrizations trained with the model.

Every prunable Linear weight ``W`` gets a score matrix ``S`` (initialised to ``|W|``, so training starts
from the magnitude ranking). The forward pass uses ``W * TopK(S)``: the binary mask keeps the largest
scores of each matrix, a fraction that falls from 1 to ``1 - sparsity`` on the cubic schedule. The mask's
gradient passes straight through to the scores, so ``dL/dS = dL/dW' * W``: weights moving away from zero
gain score, weights moving towards zero lose it. After training the masks are baked into the weights
and the parametrizations removed, leaving a plain (sparse) model. With ``freeze_weights`` only the
scores train (static mask learning): the mask alone adapts the frozen model to the task.

Soft movement pruning (same paper) replaces the top-k by a fixed threshold: ``W * 1[S > tau]``, with
``lambda * mean(sigmoid(S))`` added to the loss. The penalty pulls every score down at the same rate,
the movement term ``dL/dW' * W`` holds up the scores of the weights the task needs, and the sparsity
(per matrix and overall) is whatever this balance leaves; ``lambda`` sets it, warming up on a cubic ramp.
"""

from __future__ import annotations

import torch
from torch.nn.utils import parametrize

from pipeline.params import GradualParams, MovementParams, SoftMovementParams


class _TopKMask(torch.autograd.Function):
    """Binary mask of the ``round(keep * n)`` largest scores; straight-through gradient."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor, keep: float) -> torch.Tensor:
        flat = scores.flatten()
        k = max(1, round(keep * flat.numel()))
        mask = torch.zeros_like(flat)
        mask[torch.topk(flat, k, sorted=False).indices] = 1.0
        return mask.view_as(scores)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None


class ScoredMask(torch.nn.Module):
    """Parametrization ``W -> W * TopK(gain * raw)``; ``state["keep"]`` is shared by all matrices."""

    def __init__(self, weight: torch.Tensor, gain: float, state: dict):
        super().__init__()
        # Adam's steps are about lr in size whatever the gradient scale, so storing scores divided by
        # ``gain`` makes the effective scores move ``gain`` times faster than the weights.
        self.raw = torch.nn.Parameter(weight.detach().abs() / gain)
        self.gain, self.state = gain, state

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * _TopKMask.apply(self.raw * self.gain, self.state["keep"])


class MovementPruner:
    """Sets up the parametrizations on creation; as an after-step hook, follows the cubic schedule."""

    def __init__(self, model: torch.nn.Module, params: MovementParams, total_steps: int,
                 linears: dict[str, torch.nn.Linear], freeze_weights: bool = False):
        self.schedule_params = GradualParams(sparsity=params.sparsity, begin=params.begin, end=params.end)
        self.total, self.step = total_steps, 0
        self.state = {"keep": 1.0}
        self.linears = linears
        for linear in linears.values():
            parametrize.register_parametrization(
                linear, "weight", ScoredMask(linear.weight, params.score_lr_scale, self.state))

        if freeze_weights:  # static mask learning: every weight frozen, only the scores train
            for name, param in model.named_parameters():
                if not name.endswith(".raw"):
                    param.requires_grad_(False)
        self.schedule: list[tuple[int, float]] = [(0, 0.0)]

    def __call__(self, model: torch.nn.Module) -> None:
        from pipeline.prune import cubic_sparsity

        self.step += 1
        target = cubic_sparsity(self.step, self.total, self.schedule_params)
        if 1.0 - target != self.state["keep"]:
            self.state["keep"] = 1.0 - target
            if self.step % 10 == 0 or target == self.schedule_params.sparsity:
                self.schedule.append((self.step, round(target, 6)))

    @torch.no_grad()
    def finish(self, sparsity: float) -> None:
        """Bake ``W * TopK(S)`` at the final sparsity into the weights and drop the parametrizations."""
        self.state["keep"] = 1.0 - sparsity
        for linear in self.linears.values():
            parametrize.remove_parametrizations(linear, "weight", leave_parametrized=True)


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
