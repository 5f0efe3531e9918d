"""Weight-space merging of state dicts, with methods registered by name.

Every method is a pure function ``(states, weights, base, params) -> state`` over float tensors of the same
names and shapes; ``dvc.yaml``'s merge stage picks one with ``merge.method``.
"""

from __future__ import annotations

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
