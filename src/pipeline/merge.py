"""Weight-space merging of state dicts, with methods registered by name.

Every method is a pure function ``(states, weights, base, params) -> state`` over float tensors of the same
names and shapes; ``dvc.yaml``'s merge stage picks one with ``merge.method``: ``linear`` (model soup),
``task_arithmetic``, ``ties``, ``dare_linear``, ``dare_ties`` (these four need the base model the runs
started from) and ``slerp`` (exactly two models, no base).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from pipeline.errors import PipelineError
from pipeline.params import MergeParams

State = dict[str, torch.Tensor]
MergeFn = Callable[[list[State], list[float], State | None, MergeParams], State]
METHODS: dict[str, MergeFn] = {}
NEEDS_BASE: set[str] = set()


def register(name: str, needs_base: bool = False) -> Callable[[MergeFn], MergeFn]:
    """Register a merge method under ``name``."""

    def add(fn: MergeFn) -> MergeFn:
        METHODS[name] = fn
        if needs_base:
            NEEDS_BASE.add(name)
        return fn

    return add


def check_compatible(states: list[State], names: list[str]) -> None:
    """All states must have the same tensor names and shapes; the error names the first difference."""
    ref, ref_name = states[0], names[0]
    for state, name in zip(states[1:], names[1:]):
        if state.keys() != ref.keys():
            diff = sorted(set(state) ^ set(ref))[:3]
            raise PipelineError(f"cannot merge {name} with {ref_name}: different tensors {diff}")
        for key, tensor in state.items():
            if tensor.shape != ref[key].shape:
                raise PipelineError(
                    f"cannot merge {name} with {ref_name}: '{key}' has shape {tuple(tensor.shape)} "
                    f"vs {tuple(ref[key].shape)}"
                )


def resolve_weights(weights: list[float], n: int) -> list[float]:
    """Equal weights when empty; otherwise exactly one weight per model."""
    if not weights:
        return [1.0 / n] * n
    if len(weights) != n:
        raise PipelineError(f"merge.weights has {len(weights)} entries for {n} models")
    return list(weights)


@register("linear")
def linear(states: list[State], weights: list[float], base: State | None, params: MergeParams) -> State:
    """Weighted average (model soup): ``sum_i w_i * theta_i / sum_i w_i``."""
    total = sum(weights)
    if total == 0:
        raise PipelineError("merge.weights sum to 0")
    return {k: sum(w * s[k].float() for w, s in zip(weights, states)) / total for k in states[0]}


@register("task_arithmetic", needs_base=True)
def task_arithmetic(states: list[State], weights: list[float], base: State | None, params: MergeParams) -> State:
    """Task arithmetic (Ilharco et al., 2023): ``base + scaling * sum_i w_i * (theta_i - base)``."""
    assert base is not None
    return {
        k: base[k].float() + params.scaling * sum(w * (s[k].float() - base[k].float()) for w, s in zip(weights, states))
        for k in states[0]
    }


def _task_vectors(states: list[State], base: State) -> list[State]:
    return [{k: s[k].float() - base[k].float() for k in s} for s in states]


def _trim(vector: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the ``ceil(density * n)`` largest-magnitude entries of one tensor (TIES step 1), zero the rest."""
    k = math.ceil(density * vector.numel())
    if k >= vector.numel():
        return vector
    flat = vector.flatten()
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep[torch.topk(flat.abs(), k, sorted=False).indices] = True
    return (flat * keep).view_as(vector)


def _elect_and_mean(vectors: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """TIES steps 2-3: the elected sign of each entry is the sign of the weighted sum; the result is the
    weighted mean over the models whose entry is non-zero and agrees with that sign (0 where none does)."""
    stacked = torch.stack(vectors)
    w = torch.tensor(weights, dtype=stacked.dtype).view(-1, *([1] * (stacked.ndim - 1)))
    sign = torch.sign((w * stacked).sum(0))
    agree = (torch.sign(stacked) == sign) & (stacked != 0)
    total = (w * agree).sum(0)
    return torch.where(total != 0, (w * stacked * agree).sum(0) / torch.where(total != 0, total, 1), 0.0)


@register("ties", needs_base=True)
def ties(states: list[State], weights: list[float], base: State | None, params: MergeParams) -> State:
    """TIES-merging (Yadav et al., 2023): trim each task vector to ``density``, elect a sign per entry,
    average the agreeing entries (disjoint mean), add ``scaling`` times the result to the base."""
    assert base is not None
    vectors = _task_vectors(states, base)
    out = {}
    for k in states[0]:
        trimmed = [_trim(v[k], params.density) for v in vectors]
        out[k] = base[k].float() + params.scaling * _elect_and_mean(trimmed, weights)
    return out


def _dare(vectors: list[State], density: float, seed: int) -> list[State]:
    """DARE (Yu et al., 2024): drop each task-vector entry with probability ``1 - density`` and rescale the
    survivors by ``1 / density`` so the expected vector is unchanged. Masks depend only on ``seed``."""
    if density >= 1:
        return vectors
    out = []
    for i, vector in enumerate(vectors):
        gen = torch.Generator().manual_seed(seed * 1000 + i)
        out.append({k: v * (torch.rand(v.shape, generator=gen) < density) / density for k, v in sorted(vector.items())})
    return out


@register("dare_linear", needs_base=True)
def dare_linear(states: list[State], weights: list[float], base: State | None, params: MergeParams) -> State:
    """DARE, then task arithmetic: ``base + scaling * sum_i w_i * dare(theta_i - base)``."""
    assert base is not None
    vectors = _dare(_task_vectors(states, base), params.density, params.seed)
    return {k: base[k].float() + params.scaling * sum(w * v[k] for w, v in zip(weights, vectors)) for k in states[0]}


@register("dare_ties", needs_base=True)
def dare_ties(states: list[State], weights: list[float], base: State | None, params: MergeParams) -> State:
    """DARE drop-and-rescale instead of TIES' trim, then TIES' sign election and disjoint mean."""
    assert base is not None
    vectors = _dare(_task_vectors(states, base), params.density, params.seed)
    return {k: base[k].float() + params.scaling * _elect_and_mean([v[k] for v in vectors], weights) for k in states[0]}


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


@register("slerp")
def slerp(states: list[State], weights: list[float], base: State | None, params: MergeParams) -> State:
    """SLERP of exactly two models at position ``t``, tensor by tensor (``merge.weights`` and the base are
    not used)."""
    if len(states) != 2:
        raise PipelineError(f"merge.method 'slerp' merges exactly two models, got {len(states)}")
    return {k: slerp_tensor(states[0][k], states[1][k], params.t) for k in states[0]}


def merge_states(states: list[State], names: list[str], params: MergeParams, base: State | None = None) -> State:
    """Merge ``states`` with ``params.method``; dtypes of the first state are kept.

    Integer buffers (e.g. ``position_ids``) are copied from the first model, not averaged.
    """
    if params.method not in METHODS:
        raise PipelineError(f"merge.method '{params.method}' is unknown (known: {', '.join(sorted(METHODS))})")
    if len(states) < 2:
        raise PipelineError("merge needs at least two models")
    if params.method in NEEDS_BASE and base is None:
        raise PipelineError(f"merge.method '{params.method}' needs a base model")
    check_compatible(states + ([base] if base is not None else []), names + (["base"] if base is not None else []))
    weights = resolve_weights(params.weights, len(states))
    floats = [k for k, v in states[0].items() if v.is_floating_point()]
    pick = lambda s: {k: s[k] for k in floats}  # noqa: E731
    merged = METHODS[params.method]([pick(s) for s in states], weights, pick(base) if base else None, params)
    out = dict(states[0])
    out.update({k: v.to(states[0][k].dtype) for k, v in merged.items()})
    return out
