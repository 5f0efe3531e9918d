"""Typed, validated views of ``params.yaml``.

A stage reads a few dotted sub-sections, each with the dataclass it expects::

    task, train = load({"tasks.cls": TaskParams, "finetune.cls": TrainArgs})

The same dotted paths are declared as the stage's ``params:`` in ``dvc.yaml`` (a test checks both
directions), so changing a value reruns exactly the stages that read it. The types come from where they
are defined: shared settings from :mod:`pipeline.config.args`, a method's from its module (the registries'
entries carry them). A type with a ``params_for(raw)`` classmethod picks its concrete subclass from the raw
mapping (a task's ``type``).

Unknown keys, wrong types, non-finite numbers and impossible values fail with a :class:`PipelineError`
naming the key.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from pipeline.core.errors import PipelineError

PARAMS_FILE = "params.yaml"


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML value to ``tp`` strictly; ``key`` names it in errors."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise PipelineError(f"{PARAMS_FILE}: '{key}' must be a mapping, got {type(value).__name__}")
        if hasattr(tp, "params_for"):
            tp = tp.params_for(value, key)
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        unknown = sorted(set(value) - names)
        if unknown:
            raise PipelineError(
                f"{PARAMS_FILE}: unknown key '{key}.{unknown[0]}' (known: {', '.join(sorted(names))})"
            )
        kwargs = {k: _convert(v, hints[k], f"{key}.{k}") for k, v in value.items()}
        try:
            return tp(**kwargs)
        except TypeError as err:  # a required field is missing
            raise PipelineError(f"{PARAMS_FILE}: '{key}': {err}") from None
        except ValueError as err:
            raise PipelineError(f"{PARAMS_FILE}: '{key}': {err}") from None
    if origin is dict:
        if not isinstance(value, dict):
            raise PipelineError(f"{PARAMS_FILE}: '{key}' must be a mapping, got {type(value).__name__}")
        val_tp = typing.get_args(tp)[1]
        return {str(k): _convert(v, val_tp, f"{key}.{k}") for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise PipelineError(f"{PARAMS_FILE}: '{key}' must be a list, got {type(value).__name__}")
        item_tp = typing.get_args(tp)[0]
        return [_convert(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise PipelineError(f"{PARAMS_FILE}: '{key}' must be one of {list(allowed)}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"unions are not supported in params ({key})")
    if tp is float:
        return _float(value, key)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is bool or tp is str:
        if isinstance(value, tp):
            return value
    else:
        raise TypeError(f"unsupported params type {tp} at {key}")
    raise PipelineError(
        f"{PARAMS_FILE}: '{key}' must be {tp.__name__}, got {type(value).__name__} {value!r}"
    )


def _float(value: Any, key: str) -> float:
    """A finite float from a YAML number, or from a string such as ``5e-4`` (YAML needs ``5.0e-4``)."""
    number = None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond the float range
            number = math.inf
    if number is None:
        raise PipelineError(f"{PARAMS_FILE}: '{key}' must be float, got {type(value).__name__} {value!r}")
    if not math.isfinite(number):
        raise PipelineError(f"{PARAMS_FILE}: '{key}' must be a finite number, got {value!r}")
    return number


def read_yaml(path: str | os.PathLike = PARAMS_FILE) -> dict:
    """The raw params mapping; a missing or malformed file is a :class:`PipelineError`."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found (run stages from the repository root)") from None
    except yaml.YAMLError as err:
        raise PipelineError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise PipelineError(f"{path}: must be a mapping of sections")
    return data


def lookup(data: dict, path: str) -> Any:
    """The raw value at a dotted path, or a :class:`PipelineError` naming the missing key (or the parent that
    is not a mapping)."""
    node: Any = data
    parts = path.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, dict):
            parent = ".".join(parts[:i])
            raise PipelineError(f"{PARAMS_FILE}: '{parent}' must be a mapping, got {type(node).__name__}")
        if part not in node:
            _refuse_dotted_key(node, parts, i)
            raise PipelineError(f"{PARAMS_FILE}: missing key '{'.'.join(parts[: i + 1])}'")
        node = node[part]
    return node


def _refuse_dotted_key(node: dict, parts: list[str], i: int) -> None:
    """Name the real cause when the rest of a dotted path is a key that itself holds a dot (a task named
    ``glue.sst2``): paths split at every dot, so such a key can never be reached."""
    rest = ".".join(parts[i:])
    for key in node:
        if isinstance(key, str) and "." in key and (rest == key or rest.startswith(f"{key}.")):
            where = ".".join([*parts[:i], key])
            raise PipelineError(f"{PARAMS_FILE}: '{where}': the name '{key}' contains a dot, which separates the "
                                f"parts of a params path; rename it without dots (e.g. '{key.replace('.', '_')}')")


def load(sections: dict[str, Any], file: str | os.PathLike = PARAMS_FILE) -> list[Any]:
    """Typed values of the given dotted sub-sections of ``params.yaml``, in the order given.

    Args:
        sections: ``{dotted path: type}``, e.g. ``{"finetune.cls": TrainArgs, "tasks.cls": TaskParams}``; a
            type is a params dataclass, or ``dict[str, X]``/``list[X]`` of one, or a plain scalar type.
        file: the params file.

    Raises:
        PipelineError: a missing section, an unknown key, a wrong type, a non-finite number or a value the
            dataclass rejects, naming the dotted key.
    """
    data = read_yaml(file)
    return [_convert(lookup(data, path), tp, path) for path, tp in sections.items()]


def leaves(data: dict, path: str) -> set[str]:
    """All dotted leaf keys under ``path`` in a raw params mapping (the path itself for a scalar)."""
    node = lookup(data, path)
    if not isinstance(node, dict):
        return {path}
    out: set[str] = set()
    for key in node:
        out |= leaves(data, f"{path}.{key}")
    return out


def as_dict(value: Any) -> Any:
    """A JSON-able view of loaded params (for ``pipeline.json``)."""
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: as_dict(v) for k, v in value.items()}
    return value
