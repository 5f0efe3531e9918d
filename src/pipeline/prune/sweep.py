"""Sweep points: more pruning branches, each a method with its main knob set to one value (``prune.sweep``).

A point ``{method: magnitude, value: 0.9}`` is one more ``prune`` branch (and its ``distill`` and evaluations):
the method's registered :attr:`~pipeline.prune.Method.target` (magnitude's ``sparsity``, heads' ``keep_heads``,
ffn's ``keep_ratio``, ...) set to ``value``, its other knobs read from ``prune.<method>``. ``dvc.yaml`` expands
``prune.sweep`` with a matrix and passes the value on the command line (``stages/prune.py --target``), so a
branch's stage changes only when its own point does: editing one value reruns only that branch. The variant
is named ``prune-<method>-<value>`` (``distill-<method>-<value>`` after distillation).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any

from pipeline.core.errors import PipelineError
from pipeline.prune import METHODS, Method


@dataclass
class SweepPoint:
    """One entry of ``prune.sweep``: a registered method and the value of its main target."""

    method: str
    """A registered pruning method that names a target (``prune.<method>`` holds its other knobs)."""
    value: Any
    """The target's value, of the target field's type (a number), e.g. a sparsity of 0.9 or 1 head kept."""

    def __post_init__(self):
        try:
            entry = METHODS.get(self.method)
            # checked against the method's defaults here; the stage checks it again with prune.<method>'s knobs
            with_target(entry, entry.params(), self.value)
        except PipelineError as err:  # the loader prefixes the entry's key (prune.sweep[i])
            raise ValueError(str(err).removeprefix("prune.sweep: ")) from None


def with_target(method: Method, params: Any, value: Any) -> Any:
    """A copy of ``params`` (a ``method.params`` instance) with the method's target set to ``value``.

    Args:
        value: an int or float (an int is taken for a float target; a bool or string never is).

    Raises:
        PipelineError: the method has no target, the value has the wrong type or is not finite, or the method's
            params reject it (e.g. a sparsity of 1); the message names the method, target and value.
    """
    where = f"prune.sweep: {method.name} {method.target}={value!r}"
    if method.target is None:
        raise PipelineError(f"prune.sweep: pruning method '{method.name}' names no target; it cannot be swept")
    expected = typing.get_type_hints(type(params))[method.target]
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not expected or (expected is float and not math.isfinite(value)):
        raise PipelineError(f"{where}: must be {'a finite float' if expected is float else expected.__name__}")
    try:
        return dataclasses.replace(params, **{method.target: value})
    except ValueError as err:
        raise PipelineError(f"{where}: {err}") from None



def at_point(method: Method, params: Any, value: Any) -> tuple[Any, dict]:
    """``(params, record)`` for a prune stage given ``value`` on its command line (None: not a sweep point).

    Returns:
        ``params`` with the target set (unchanged for None) and what to add to the artifact's ``pipeline.json``:
        ``{"sweep": {"target", "value"}}`` for a point, ``{}`` otherwise (a plain branch's artifact is unchanged).
    """
    if value is None:
        return params, {}
    return with_target(method, params, value), {"sweep": {"target": method.target, "value": value}}
