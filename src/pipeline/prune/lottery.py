"""Pruning method ``lottery``: iterative magnitude pruning with weight rewinding (lottery tickets).

Frankle & Carbin (2019), "The Lottery Ticket Hypothesis": train, prune the smallest-magnitude weights, reset
the survivors to their earlier values, train again; repeated over rounds. Rewinding to an early point of
training (step ``k``) instead of the initial weights: Frankle, Dziugaite, Roy & Carbin (2020), "Linear Mode
Connectivity and the Lottery Ticket Hypothesis". Here the first round trains the fine-tuned source and keeps
every parameter's value after ``k`` optimizer steps (``k = round(rewind_fraction * steps of the round)``;
``k = 0`` rewinds to the source itself); each round then prunes the same fraction of the weights still left,
so the last one reaches ``sparsity`` exactly, and the ticket (the rewound survivors) is trained once more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from pipeline.config.args import TrainArgs
from pipeline.core.errors import PipelineError
from pipeline.prune import PruneContext, register
from pipeline.prune.masks import apply_masks_, magnitude_masks, prunable_weights, sparsity_report


@dataclass
class LotteryParams:
    """Iterative magnitude pruning with rewinding (Frankle & Carbin 2019; Frankle et al. 2020)."""

    sparsity: float = 0.6
    """Final sparsity of the encoder's Linear weights, in [0, 1)."""
    rounds: int = 2
    """Prune-and-rewind rounds; each removes ``1 - (1 - sparsity) ** (1 / rounds)`` of the weights left."""
    rewind_fraction: float = 0.1
    """Where the rewind point lies: this fraction of the first round's optimizer steps, in [0, 1)."""
    scope: Literal["global", "layer"] = "global"
    """``global`` ranks all encoder weights together; ``layer`` prunes each matrix to the same sparsity."""
    train: TrainArgs = field(default_factory=lambda: TrainArgs(epochs=1.0, lr=5e-4))
    """Each round's training (``rounds + 1`` trainings: before every pruning step, and the ticket's)."""

    def __post_init__(self):
        if not 0 <= self.sparsity < 1:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if self.rounds < 1:
            raise ValueError("rounds must be >= 1")
        if not 0 <= self.rewind_fraction < 1:
            raise ValueError(f"rewind_fraction must be in [0, 1), got {self.rewind_fraction}")
        if self.train.checkpoint_every:
            # one stage trains several times from rewound weights: a checkpoint would not say which round it is
            raise ValueError("prune.lottery.train.checkpoint_every must be 0: lottery rounds cannot resume from a checkpoint")


def round_sparsity(params: LotteryParams, done: int) -> float:
    """Sparsity after ``done`` of ``params.rounds`` pruning steps: ``1 - (1 - sparsity) ** (done / rounds)``
    (a constant fraction of the remaining weights per round; exactly ``sparsity`` after the last)."""
    return params.sparsity if done == params.rounds else 1 - (1 - params.sparsity) ** (done / params.rounds)


class TicketHook:
    """After-step hook of one round: keeps pruned weights at zero and, when asked, saves every parameter's value
    after ``rewind_step`` optimizer steps (0: before the first). No ``state_dict``: the training loop refuses
    checkpoints with it, since a resumed round would lose its masks and rewind point."""

    def __init__(self, model: torch.nn.Module, masks: dict[str, torch.Tensor], rewind_step: int | None):
        self.masks, self.rewind_step, self.step = masks, rewind_step, 0
        self.rewind: dict[str, torch.Tensor] | None = None
        if rewind_step == 0:
            self.rewind = snapshot(model)

    def __call__(self, model: torch.nn.Module) -> None:
        self.step += 1
        if self.masks:
            apply_masks_(model, self.masks)
        if self.step == self.rewind_step:
            self.rewind = snapshot(model)


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every parameter and buffer of ``model`` (on the CPU)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def rewind_(model: torch.nn.Module, state: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> None:
    """Set ``model`` to the saved ``state`` with the pruned weights (``masks`` False) at zero, in place."""
    model.load_state_dict(state)
    apply_masks_(model, masks)


@register("lottery", LotteryParams, zeroing=True, trains=True, target="sparsity")
def lottery(model: torch.nn.Module, params: LotteryParams, context: PruneContext) -> dict:
    """Train, prune, rewind the survivors to step ``k``, over ``params.rounds`` rounds, then train the ticket.

    Returns:
        ``target_sparsity``, ``rewind_step``, ``rounds`` (per training: the sparsity it trained at, its steps and
        last epoch's record) and the achieved sparsity (:func:`~pipeline.prune.masks.sparsity_report`).

    Raises:
        PipelineError: the first round ran fewer optimizer steps than the rewind step.
    """
    masks: dict[str, torch.Tensor] = {}
    rewind, rewind_step, record = None, None, []
    for done in range(params.rounds + 1):
        first = rewind is None
        result = context.train(model, lambda total, masks=masks, first=first: TicketHook(
            model, masks, round(params.rewind_fraction * total) if first else None))
        hook = result["pruner"]
        if first and hook.rewind is None:
            raise PipelineError(f"prune.lottery: the first round ran {hook.step} optimizer steps, fewer than the "
                                f"rewind step {hook.rewind_step}")
        rewind, rewind_step = (hook.rewind, hook.rewind_step) if first else (rewind, rewind_step)
        record.append({"sparsity": round(round_sparsity(params, done), 6), "steps": hook.step,
                       "last_epoch": result["history"][-1]})
        if done == params.rounds:  # that was the ticket's training
            break
        # Pruned weights are zero, the smallest magnitudes: ranking all weights prunes them again plus the
        # smallest survivors, exactly round(target * n) in all.
        masks = magnitude_masks(prunable_weights(model), round_sparsity(params, done + 1), params.scope)
        rewind_(model, rewind, masks)
    return {"target_sparsity": params.sparsity, "rewind_step": rewind_step, "rounds": record,
            **sparsity_report(model)}
