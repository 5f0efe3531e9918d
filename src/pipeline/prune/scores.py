"""Learned score masks shared by ``movement`` and ``mask_learning``: movement pruning, top-k variant
(Sanh et al., 2020), as weight parametrizations trained with the model.

Every prunable Linear weight ``W`` gets a score matrix ``S`` (initialised to ``|W|``, so training starts
from the magnitude ranking). The forward pass uses ``W * TopK(S)``: the binary mask keeps the largest
scores of each matrix, a fraction that falls from 1 to ``1 - sparsity`` on the cubic schedule. The mask's
gradient passes straight through to the scores, so ``dL/dS = dL/dW' * W``: weights moving away from zero
gain score, weights moving towards zero lose it. After training the masks are baked into the weights
and the parametrizations removed, leaving a plain (sparse) model. With ``freeze_weights`` only the
scores train (static mask learning): the mask alone adapts the frozen model to the task.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.nn.utils import parametrize

from pipeline.config.args import TrainArgs
from pipeline.prune.masks import cubic_sparsity, prunable_linears, sparsity_report, thinned


@dataclass
class TopKScoreParams:
    """Settings shared by the top-k learned-score methods (``movement``, ``mask_learning``)."""

    sparsity: float = 0.6
    """Final sparsity of the encoder's Linear weights (per matrix), in [0, 1)."""
    begin: float = 0.0
    end: float = 0.7
    """The kept fraction follows the cubic schedule from ``begin`` to ``end`` (fractions of the steps)."""
    score_lr_scale: float = 20.0
    """Scores move this many times faster than the weights (they share the optimizer's learning rate)."""
    train: TrainArgs = field(default_factory=lambda: TrainArgs(epochs=1.0, lr=5e-4))

    def __post_init__(self):
        if not 0 <= self.sparsity < 1:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if not 0 <= self.begin < self.end <= 1:
            raise ValueError("need 0 <= begin < end <= 1")
        if self.score_lr_scale <= 0:
            raise ValueError("score_lr_scale must be > 0")


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

    def __init__(self, model: torch.nn.Module, params: TopKScoreParams, total_steps: int,
                 linears: dict[str, torch.nn.Linear], freeze_weights: bool = False):
        self.params = params
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
        self.step += 1
        p = self.params
        target = cubic_sparsity(self.step, self.total, p.sparsity, 0.0, p.begin, p.end)
        if 1.0 - target != self.state["keep"]:
            self.state["keep"] = 1.0 - target
            if self.step % 10 == 0 or target == p.sparsity:
                self.schedule.append((self.step, round(target, 6)))

    @torch.no_grad()
    def finish(self, sparsity: float) -> None:
        """Bake ``W * TopK(S)`` at the final sparsity into the weights and drop the parametrizations."""
        self.state["keep"] = 1.0 - sparsity
        for linear in self.linears.values():
            parametrize.remove_parametrizations(linear, "weight", leave_parametrized=True)


def train_with_scores(model: torch.nn.Module, params: TopKScoreParams, train, freeze_weights: bool) -> dict:
    """Fine-tune ``model`` with learned top-k score masks down to ``params.sparsity`` per matrix, then bake
    the masks into the weights; returns the method's report."""
    linears = prunable_linears(model)
    history = train(model, lambda total: MovementPruner(model, params, total, linears, freeze_weights=freeze_weights))
    pruner = history.pop("pruner")
    pruner.finish(params.sparsity)
    return {"target_sparsity": params.sparsity, "schedule": thinned(pruner.schedule),
            "history": history["history"], **sparsity_report(model)}
