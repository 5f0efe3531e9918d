"""Task vectors and the TIES/DARE operations on them, shared by the task-vector merge methods."""

from __future__ import annotations

import math

import torch

from pipeline.merge import State


def task_vectors(states: list[State], base: State) -> list[State]:
    """``theta_i - base`` per model, in float32."""
    return [{k: s[k].float() - base[k].float() for k in s} for s in states]


def trim(vector: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the ``ceil(density * n)`` largest-magnitude entries of one tensor (TIES step 1), zero the rest."""
    k = math.ceil(density * vector.numel())
    if k >= vector.numel():
        return vector
    flat = vector.flatten()
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep[torch.topk(flat.abs(), k, sorted=False).indices] = True
    return (flat * keep).view_as(vector)


def elect_and_mean(vectors: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """TIES steps 2-3: the elected sign of each entry is the sign of the weighted sum; the result is the
    weighted mean over the models whose entry is non-zero and agrees with that sign (0 where none does)."""
    stacked = torch.stack(vectors)
    w = torch.tensor(weights, dtype=stacked.dtype).view(-1, *([1] * (stacked.ndim - 1)))
    sign = torch.sign((w * stacked).sum(0))
    agree = (torch.sign(stacked) == sign) & (stacked != 0)
    total = (w * agree).sum(0)
    return torch.where(total != 0, (w * stacked * agree).sum(0) / torch.where(total != 0, total, 1), 0.0)


def dare(vectors: list[State], density: float, seed: int) -> list[State]:
    """DARE (Yu et al., 2024): drop each task-vector entry with probability ``1 - density`` and rescale the
    survivors by ``1 / density`` so the expected vector is unchanged. Masks depend only on ``seed``."""
    if density >= 1:
        return vectors
    out = []
    for i, vector in enumerate(vectors):
        gen = torch.Generator().manual_seed(seed * 1000 + i)
        out.append({k: v * (torch.rand(v.shape, generator=gen) < density) / density for k, v in sorted(vector.items())})
    return out
