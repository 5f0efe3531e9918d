"""Merge method ``ties``: TIES-merging (Yadav et al., 2023)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.merge import State, register
from pipeline.merge.task_vectors import elect_and_mean, task_vectors, trim


@dataclass
class TiesParams:
    """Knobs of TIES (``merge.ties``)."""

    scaling: float = 1.0
    """The merged task vector is added to the base times this."""
    density: float = 0.5
    """Fraction of each task vector's entries kept (largest magnitudes), in (0, 1]."""

    def __post_init__(self):
        if not 0 < self.density <= 1:
            raise ValueError("density must be in (0, 1]")


@register("ties", TiesParams, needs_base=True)
def ties(states: list[State], weights: list[float], base: State | None, params: TiesParams) -> State:
    """Trim each task vector to ``density``, elect a sign per entry, average the agreeing entries (disjoint
    mean), add ``scaling`` times the result to the base."""
    assert base is not None
    vectors = task_vectors(states, base)
    out = {}
    for k in states[0]:
        trimmed = [trim(v[k], params.density) for v in vectors]
        out[k] = base[k].float() + params.scaling * elect_and_mean(trimmed, weights)
    return out
