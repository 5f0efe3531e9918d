"""Pruning method ``l0``: L0 regularisation with hard-concrete gates (Louizos, Welling & Kingma, 2018).

Every encoder Linear weight ``w`` is multiplied by a gate ``z`` in [0, 1] drawn from the hard-concrete
distribution with a learned location ``log_alpha``: a binary-concrete (relaxed Bernoulli) sample with
temperature ``beta``, stretched to ``(gamma, zeta)`` and clipped to [0, 1], so a gate is exactly 0 or
exactly 1 with non-zero probability and still has a reparameterised gradient in between. The expected
number of non-zero gates (the expected L0 norm) has a closed form and is added to the loss; gates whose
``log_alpha`` is driven down close for good. At the end the deterministic test-time gates are baked into
the weights, leaving a plain model whose zeros are a binary mask, like magnitude pruning's.

Gates are per weight, not per output row: the result is unstructured sparsity directly comparable with
the other unstructured methods (same compact storage, same sparsity metric). Row gates would prune
neurons, which only pays off when the rows are removed physically, as the ``ffn`` and ``heads`` methods do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch.nn.utils import parametrize

from pipeline.config.args import TrainArgs
from pipeline.prune import PruneContext, register
from pipeline.prune.masks import prunable_linears, sparsity_report, thinned


@dataclass
class L0Params:
    """L0 regularisation with hard-concrete gates on every encoder Linear weight (Louizos et al., 2018)."""

    penalty: float = 10.0
    """lambda: weight of the expected-L0 term (expected fraction of weights kept) added to the loss."""
    target: float = 0.0
    """Target sparsity in [0, 1): if > 0 only the expected density above ``1 - target`` is penalised, so
    the gates stop closing there; 0 penalises the whole expected L0 (the sparsity follows ``penalty``)."""
    log_alpha_init: float = 3.0
    """Initial gate location; 3.0 leaves about 1% of the sampled gates at 0, so training starts dense."""
    gate_lr_scale: float = 500.0
    """The gates' log_alpha moves this many times faster than the weights (shared learning rate)."""
    train: TrainArgs = field(default_factory=lambda: TrainArgs(epochs=1.0, lr=5e-4))

    def __post_init__(self):
        if self.penalty < 0:
            raise ValueError("penalty must be >= 0")
        if not 0 <= self.target < 1:
            raise ValueError(f"target must be in [0, 1), got {self.target}")
        if self.gate_lr_scale <= 0:
            raise ValueError("gate_lr_scale must be > 0")


BETA, GAMMA, ZETA = 2.0 / 3.0, -0.1, 1.1
"""The paper's temperature and stretch interval."""
_EPS = 1e-6  # keeps log(u) and log(1 - u) finite


def hard_concrete_sample(log_alpha: torch.Tensor, u: torch.Tensor, beta: float = BETA,
                         gamma: float = GAMMA, zeta: float = ZETA) -> torch.Tensor:
    """Hard-concrete gates from uniform noise (any shape; ``u`` like ``log_alpha``, in (0, 1)).

    ``s = sigmoid((log u - log(1 - u) + log_alpha) / beta)``, ``z = min(1, max(0, s (zeta - gamma) + gamma))``.
    """
    s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + log_alpha) / beta)
    return (s * (zeta - gamma) + gamma).clamp(0.0, 1.0)


def hard_concrete_eval(log_alpha: torch.Tensor, gamma: float = GAMMA, zeta: float = ZETA) -> torch.Tensor:
    """Deterministic test-time gates ``min(1, max(0, sigmoid(log_alpha) (zeta - gamma) + gamma))``."""
    return (torch.sigmoid(log_alpha) * (zeta - gamma) + gamma).clamp(0.0, 1.0)


def expected_l0(log_alpha: torch.Tensor, beta: float = BETA, gamma: float = GAMMA,
                zeta: float = ZETA) -> torch.Tensor:
    """``P(z != 0) = sigmoid(log_alpha - beta * log(-gamma / zeta))`` per gate (same shape as ``log_alpha``)."""
    return torch.sigmoid(log_alpha - beta * math.log(-gamma / zeta))


class HardConcreteGate(torch.nn.Module):
    """Parametrization ``W -> W * z``: sampled gates in training mode, deterministic gates in eval mode."""

    def __init__(self, weight: torch.Tensor, init: float, gain: float):
        super().__init__()
        # As for movement scores: Adam moves ``raw`` about lr per step, so storing ``log_alpha / gain`` lets
        # the gates move ``gain`` times faster than the weights with the one shared learning rate.
        self.raw = torch.nn.Parameter(torch.full_like(weight.detach(), init / gain))
        self.gain = gain

    def log_alpha(self) -> torch.Tensor:
        return self.raw * self.gain

    def gates(self) -> torch.Tensor:
        log_alpha = self.log_alpha()
        if not self.training:
            return hard_concrete_eval(log_alpha)
        u = torch.rand_like(log_alpha).clamp(_EPS, 1.0 - _EPS)
        return hard_concrete_sample(log_alpha, u)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.gates()


class L0Pruner:
    """Hard-concrete gates on the given Linears, the expected-L0 loss term, and the final baking.

    Use :meth:`penalty` inside the loss and the object as the after-step hook (it logs the expected
    sparsity); :meth:`start` sets the number of steps and returns the hook.
    """

    def __init__(self, params: L0Params, linears: dict[str, torch.nn.Linear]):
        self.params, self.linears = params, linears
        self.total, self.step = 1, 0
        self.gates: list[HardConcreteGate] = []
        for linear in linears.values():
            gate = HardConcreteGate(linear.weight, params.log_alpha_init, params.gate_lr_scale)
            parametrize.register_parametrization(linear, "weight", gate)
            self.gates.append(gate)
        self.schedule: list[tuple[int, float]] = []  # (step, expected sparsity)

    def start(self, total_steps: int) -> "L0Pruner":
        self.total = total_steps
        with torch.no_grad():
            self.schedule.append((0, round(1.0 - float(self.expected_density()), 6)))
        return self

    def expected_density(self) -> torch.Tensor:
        """Expected fraction of non-zero gates over all gated weights (expected L0 / number of weights)."""
        total = sum(expected_l0(g.log_alpha()).sum() for g in self.gates)
        return total / sum(g.raw.numel() for g in self.gates)

    def penalty(self) -> torch.Tensor:
        """``lambda * E[L0]/n``; with a target sparsity, only the excess of the expected density over
        ``1 - target`` is penalised (a hinge), so the gates stop closing once the target is reached."""
        density = self.expected_density()
        if self.params.target > 0:
            density = torch.relu(density - (1.0 - self.params.target))
        return self.params.penalty * density

    def __call__(self, model: torch.nn.Module) -> None:
        self.step += 1
        if self.step % 10 == 0 or self.step == self.total:
            with torch.no_grad():
                self.schedule.append((self.step, round(1.0 - float(self.expected_density()), 6)))

    @torch.no_grad()
    def finish(self) -> dict:
        """Bake the deterministic gates into the weights (``W * z_hat``), drop the parametrizations.

        Returns:
            ``{"fractional_gates"}``: the fraction of gates strictly between 0 and 1 (their weights are
            scaled rather than kept or removed; few once training has saturated the gates).
        """
        fractional = sum(int(((z := hard_concrete_eval(g.log_alpha())) > 0).logical_and(z < 1).sum())
                         for g in self.gates)
        for gate, linear in zip(self.gates, self.linears.values()):
            gate.eval()  # deterministic gates, whatever mode the model was left in
            parametrize.remove_parametrizations(linear, "weight", leave_parametrized=True)
        return {"fractional_gates": fractional / sum(g.raw.numel() for g in self.gates)}


@register("l0", L0Params, zeroing=True, trains=True, target="penalty")
def l0(model: torch.nn.Module, params: L0Params, context: PruneContext) -> dict:
    """Fine-tune with hard-concrete gates and the expected-L0 penalty in the loss, then bake the
    deterministic gates into the weights."""
    pruner = L0Pruner(params, prunable_linears(model))
    history = context.train(model, pruner.start, loss_fn=lambda m, b: context.loss_fn(m, b) + pruner.penalty())
    expected = 1.0 - float(pruner.expected_density().detach())
    gates = pruner.finish()
    return {"penalty": params.penalty, "target": params.target, "expected_sparsity": round(expected, 6), **gates,
            "schedule": thinned(pruner.schedule),
            "history": history["history"], **sparsity_report(model)}
