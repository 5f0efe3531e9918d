"""Merge method ``dare_linear``: DARE drop-and-rescale (Yu et al., 2024), then task arithmetic."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config.args import check_seed
from pipeline.merge import State, register
from pipeline.merge.task_vectors import dare, task_vectors


@dataclass
class DareLinearParams:
    """Knobs of DARE (``merge.dare_linear``)."""

    scaling: float = 1.0
    """The merged task vector is added to the base times this."""
    density: float = 0.5
    """Keep probability of each task-vector entry (the survivors are rescaled by ``1 / density``), in (0, 1]."""
    seed: int = 0
    """Seed of the random drop masks."""

    def __post_init__(self):
        if not 0 < self.density <= 1:
            raise ValueError("density must be in (0, 1]")
        check_seed(self.seed)


@register("dare_linear", DareLinearParams, needs_base=True)
def dare_linear(states: list[State], weights: list[float], base: State | None, params: DareLinearParams) -> State:
    """``base + scaling * sum_i w_i * dare(theta_i - base)``."""
    assert base is not None
    vectors = dare(task_vectors(states, base), params.density, params.seed)
    return {k: base[k].float() + params.scaling * sum(w * v[k] for w, v in zip(weights, vectors)) for k in states[0]}
