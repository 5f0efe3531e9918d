"""Merge method ``task_arithmetic`` (Ilharco et al., 2023): the base plus the scaled sum of task vectors."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.merge import State, register


@dataclass
class TaskArithmeticParams:
    """Knobs of task arithmetic (``merge.task_arithmetic``)."""

    scaling: float = 1.0
    """The merged task vector is added to the base times this."""


@register("task_arithmetic", TaskArithmeticParams, needs_base=True)
def task_arithmetic(states: list[State], weights: list[float], base: State | None,
                    params: TaskArithmeticParams) -> State:
    """``base + scaling * sum_i w_i * (theta_i - base)``."""
    assert base is not None
    return {
        k: base[k].float() + params.scaling * sum(w * (s[k].float() - base[k].float()) for w, s in zip(weights, states))
        for k in states[0]
    }
