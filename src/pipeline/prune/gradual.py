"""Pruning method ``gradual``: magnitude pruning while fine-tuning, the sparsity raised on the cubic schedule
of Zhu & Gupta (2017), masks frozen once the target is reached."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from pipeline.config.args import TrainArgs
from pipeline.prune import PruneContext, register
from pipeline.prune.masks import (
    apply_masks_,
    cubic_sparsity,
    magnitude_masks,
    prunable_weights,
    sparsity_report,
    thinned,
)


@dataclass
class GradualParams:
    """Gradual magnitude pruning during fine-tuning with the cubic schedule of Zhu & Gupta (2017)."""

    sparsity: float = 0.6
    """Final sparsity of the encoder's Linear weights, in [0, 1)."""
    initial_sparsity: float = 0.0
    begin: float = 0.0
    """Fraction of the training steps after which pruning starts."""
    end: float = 0.7
    """Fraction of the training steps at which the final sparsity is reached; masks are frozen after."""
    frequency: int = 10
    """Optimizer steps between mask updates."""
    scope: Literal["global", "layer"] = "global"
    train: TrainArgs = field(default_factory=lambda: TrainArgs(epochs=1.0, lr=5e-4))
    """Fine-tuning during pruning (the source model keeps training while it is pruned)."""

    def __post_init__(self):
        if not 0 <= self.initial_sparsity <= self.sparsity < 1:
            raise ValueError("need 0 <= initial_sparsity <= sparsity < 1")
        if not 0 <= self.begin < self.end <= 1:
            raise ValueError("need 0 <= begin < end <= 1")
        if self.frequency < 1:
            raise ValueError("frequency must be >= 1")


class GradualPruner:
    """``after_step`` hook for the training loop: re-prunes every ``frequency`` steps on the cubic
    schedule and re-applies the current masks after every other step (pruned weights stay zero)."""

    def __init__(self, model: torch.nn.Module, params: GradualParams, total_steps: int):
        self.params, self.total, self.step = params, total_steps, 0
        self.masks: dict[str, torch.Tensor] = {}
        self.schedule: list[tuple[int, float]] = []
        self._update(model)

    def _update(self, model: torch.nn.Module) -> None:
        p = self.params
        target = cubic_sparsity(self.step, self.total, p.sparsity, p.initial_sparsity, p.begin, p.end)
        if target > 0:
            # on the weights' device: no copy of the weights leaves it (a GPU's masks never touch the CPU)
            self.masks = magnitude_masks(prunable_weights(model), target, self.params.scope)
        self.schedule.append((self.step, round(target, 6)))

    def __call__(self, model: torch.nn.Module) -> None:
        self.step += 1
        end = self.params.end * self.total
        if self.step % self.params.frequency == 0 and self.step <= end + self.params.frequency:
            self._update(model)
        if self.masks:
            apply_masks_(model, self.masks)


@register("gradual", GradualParams, zeroing=True, trains=True, target="sparsity")
def gradual(model: torch.nn.Module, params: GradualParams, context: PruneContext) -> dict:
    """Fine-tune while pruning to ``params.sparsity`` on the cubic schedule."""
    history = context.train(model, lambda total: GradualPruner(model, params, total))
    pruner = history.pop("pruner")
    # The last scheduled update may fall short of the target by rounding of steps: enforce it exactly.
    apply_masks_(model, magnitude_masks(prunable_weights(model), params.sparsity, params.scope))
    return {"target_sparsity": params.sparsity, "schedule": thinned(pruner.schedule),
            "history": history["history"], **sparsity_report(model)}
