"""Merge method ``dare_ties``: DARE drop-and-rescale (Yu et al., 2024) instead of TIES' trim, then TIES' sign
election and disjoint mean."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.merge import State, register
from pipeline.merge.dare_linear import DareLinearParams
from pipeline.merge.task_vectors import dare, elect_and_mean, task_vectors


@dataclass
class DareTiesParams(DareLinearParams):
    """Knobs of DARE before TIES' election (``merge.dare_ties``): those of ``merge.dare_linear``."""


@register("dare_ties", DareTiesParams, needs_base=True)
def dare_ties(states: list[State], weights: list[float], base: State | None, params: DareTiesParams) -> State:
    """``base + scaling * elect_and_mean(dare(theta_i - base))``."""
    assert base is not None
    vectors = dare(task_vectors(states, base), params.density, params.seed)
    return {k: base[k].float() + params.scaling * elect_and_mean([v[k] for v in vectors], weights) for k in states[0]}
