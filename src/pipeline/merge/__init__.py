"""Weight-space merging of the pretraining runs, one module per method, registered by name (``merge.method``).

Every method is a pure function ``(states, weights, base, params) -> state`` over float tensors of the same
names and shapes, with its own knobs read from ``merge.<method>``: ``linear`` (model soup),
``task_arithmetic``, ``ties``, ``dare_linear``, ``dare_ties`` (these four need the base model the runs
started from) and ``slerp`` (exactly two models, no base). :func:`merge_states` checks the inputs and runs one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from pipeline.core.errors import PipelineError
from pipeline.core.registry import Registry

State = dict[str, torch.Tensor]
MergeFn = Callable[[list[State], list[float], State | None, Any], State]


@dataclass(frozen=True)
class Method:
    """A registered merge method."""

    name: str
    params: type
    """Its knobs, read from ``merge.<name>`` (a dataclass, possibly without fields)."""
    fn: MergeFn
    needs_base: bool = False
    """True for methods working on task vectors ``theta_i - base``."""


METHODS: Registry[Method] = Registry("pipeline.merge", "merge method")


def register(name: str, params: type, needs_base: bool = False) -> Callable[[MergeFn], MergeFn]:
    """Register the decorated function as merge method ``name`` (call it from ``pipeline/merge/<name>.py``)."""

    def add(fn: MergeFn) -> MergeFn:
        METHODS.add(name, Method(name, params, fn, needs_base), fn.__module__)
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


def merge_states(states: list[State], names: list[str], method: Method | str, params: Any = None,
                 weights: list[float] | None = None, base: State | None = None) -> State:
    """Merge ``states`` with ``method`` (an entry or a registered name) and its ``params``; dtypes of the first
    state are kept.

    Args:
        names: one name per state, for error messages.
        params: the method's knobs (``merge.<method>``); None takes its defaults.
        weights: ``merge.weights`` (one per model; empty means equal weights).
        base: the state the runs started from (task-vector methods).

    Integer buffers (e.g. ``position_ids``) are copied from the first model, not averaged.
    """
    if isinstance(method, str):
        method = METHODS.get(method)
    params = method.params() if params is None else params
    if len(states) < 2:
        raise PipelineError("merge needs at least two models")
    if method.needs_base and base is None:
        raise PipelineError(f"merge.method '{method.name}' needs a base model")
    check_compatible(states + ([base] if base is not None else []), names + (["base"] if base is not None else []))
    weights = resolve_weights(weights or [], len(states))
    floats = [k for k, v in states[0].items() if v.is_floating_point()]
    pick = lambda s: {k: s[k] for k in floats}  # noqa: E731
    merged = method.fn([pick(s) for s in states], weights, pick(base) if base else None, params)
    out = dict(states[0])
    out.update({k: v.to(states[0][k].dtype) for k, v in merged.items()})
    return out
