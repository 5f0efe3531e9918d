"""Movement pruning, top-k variant (Sanh et al., 2020), as weight parametrizations trained with the model.

Every prunable Linear weight ``W`` gets a score matrix ``S`` (initialised to ``|W|``, so training starts
from the magnitude ranking). The forward pass uses ``W * TopK(S)``: the binary mask keeps the largest
scores of each matrix, a fraction that falls from 1 to ``1 - sparsity`` on the cubic schedule. The mask's
gradient passes straight through to the scores, so ``dL/dS = dL/dW' * W``: weights moving away from zero
gain score, weights moving towards zero lose it. After training the masks are baked into the weights
and the parametrizations removed, leaving a plain (sparse) model. With ``freeze_weights`` only the
scores train (static mask learning): the mask alone adapts the frozen model to the task.
"""

from __future__ import annotations

import torch
from torch.nn.utils import parametrize

from pipeline.params import GradualParams, MovementParams


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
