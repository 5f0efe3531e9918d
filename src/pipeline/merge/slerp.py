"""Merge method ``slerp``: spherical linear interpolation of two models, tensor by tensor."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pipeline.core.errors import PipelineError
from pipeline.merge import State, register


@dataclass
class SlerpParams:
    """Knobs of SLERP (``merge.slerp``)."""

    t: float = 0.5
    """Interpolation position between the first (0) and the second (1) model."""

    def __post_init__(self):
        if not 0 <= self.t <= 1:
            raise ValueError("t must be in [0, 1]")


def slerp_tensor(a: torch.Tensor, b: torch.Tensor, t: float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation between two tensors viewed as flat vectors (norms interpolated linearly).

    Falls back to linear interpolation when the vectors are (anti)parallel within ``eps`` or one is zero.
    """
    a32, b32 = a.float().flatten(), b.float().flatten()
    na, nb = a32.norm(), b32.norm()
    if na < eps or nb < eps:
        return ((1 - t) * a32 + t * b32).view_as(a)
    cos = torch.clamp(torch.dot(a32 / na, b32 / nb), -1.0, 1.0)
    theta = torch.arccos(cos)
    if theta.abs() < eps or (math.pi - theta).abs() < eps:
        return ((1 - t) * a32 + t * b32).view_as(a)
    direction = (torch.sin((1 - t) * theta) * a32 / na + torch.sin(t * theta) * b32 / nb) / torch.sin(theta)
    return (direction * ((1 - t) * na + t * nb)).view_as(a)


@register("slerp", SlerpParams)
def slerp(states: list[State], weights: list[float], base: State | None, params: SlerpParams) -> State:
    """SLERP of exactly two models at position ``t`` (``merge.weights`` and the base are not used)."""
    if len(states) != 2:
        raise PipelineError(f"merge.method 'slerp' merges exactly two models, got {len(states)}")
    return {k: slerp_tensor(states[0][k], states[1][k], params.t) for k in states[0]}
