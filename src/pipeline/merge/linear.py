"""Merge method ``linear``: the weighted average of the models (model soup; Wortsman et al., 2022)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.errors import PipelineError
from pipeline.merge import State, register


@dataclass
class LinearParams:
    """No knobs besides ``merge.weights``."""


@register("linear", LinearParams)
def linear(states: list[State], weights: list[float], base: State | None, params: LinearParams) -> State:
    """Weighted average (model soup): ``sum_i w_i * theta_i / sum_i w_i``."""
    total = sum(weights)
    if total == 0:
        raise PipelineError("merge.weights sum to 0")
    return {k: sum(w * s[k].float() for w, s in zip(weights, states)) / total for k in states[0]}
