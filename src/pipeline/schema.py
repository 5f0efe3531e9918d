"""The type of every section of ``params.yaml``, for checking a whole params file at once.

It sits above every package (it imports them all), so stages never import it: each reads its own sections with the types it names (so its code deps stay
narrow). Tools that look at the whole file do: the tests, ``profiles/apply.py`` (a profile is checked
before it is applied), and :func:`check_file`. Method sections (``prune.<method>``, ``merge.<method>``,
``quantize.<scheme>``) take their types from the registries, so this imports every method.
"""

from __future__ import annotations

import os
from typing import Any

from pipeline.config.args import LaunchParams, TrainArgs
from pipeline.models.build import ArchParams
from pipeline.config.loader import PARAMS_FILE, load, lookup, read_yaml
from pipeline.config.task_names import check_task_lists
from pipeline.core.errors import PipelineError
from pipeline.data.params import PrepareParams
from pipeline.distill.kd import KDParams
from pipeline.distill.teacher import TeacherParams
from pipeline.evaluation import EvaluateParams
from pipeline.export import GraphParams, Int8Params
from pipeline.merge import METHODS as MERGE_METHODS
from pipeline.pretrain.mlm import MlmParams, PretrainRun
from pipeline.pretrain.nsp import Objective
from pipeline.prune import METHODS as PRUNE_METHODS
from pipeline.prune.sweep import SweepPoint
from pipeline.quantize import SCHEMES, LogitErrorParams
from pipeline.report.cited import ReportParams
from pipeline.tasks import TaskParams

# Sections with one fixed type (dotted path -> type).
FIXED: dict[str, Any] = {
    "prepare": PrepareParams,
    "model": ArchParams,
    "launch": LaunchParams,
    "pretrain.objective": Objective,
    "pretrain.mlm": MlmParams,
    "pretrain.train": TrainArgs,
    "pretrain.runs": dict[str, PretrainRun],
    "merge.method": str,
    "merge.weights": list[float],
    "tasks": dict[str, TaskParams],
    "finetune": dict[str, TrainArgs],
    "teacher": dict[str, TeacherParams],
    "prune.sweep": list[SweepPoint],
    "distill.kd": KDParams,
    "distill.train": dict[str, TrainArgs],
    "quantize.schemes": list[str],
    "quantize.sources": list[str],
    "quantize.logit_error": LogitErrorParams,
    "export.sources": list[str],
    "export.onnx": GraphParams,
    "export.int8": Int8Params,
    "export.logit_error": LogitErrorParams,
    "evaluate": EvaluateParams,
    "report": ReportParams,
}
# Sections whose keys are plug-in names: parent -> (registry, kind of key).
PLUGINS = {"merge": MERGE_METHODS, "prune": PRUNE_METHODS, "quantize": SCHEMES}


def sections(data: dict) -> dict[str, Any]:
    """``{dotted path: type}`` of every section present in a raw params mapping.

    Raises:
        PipelineError: a top-level section or a plug-in key that no code knows.
    """
    out = {path: tp for path, tp in FIXED.items() if _present(data, path)}
    known_top = {p.split(".")[0] for p in FIXED} | set(PLUGINS)
    for key in data:
        if key not in known_top:
            raise PipelineError(f"{PARAMS_FILE}: unknown section '{key}' (known: {', '.join(sorted(known_top))})")
    for parent, registry in PLUGINS.items():
        node = data.get(parent, {})
        for key in node if isinstance(node, dict) else []:
            path = f"{parent}.{key}"
            if path not in FIXED:
                out[path] = registry.get(key, path).params
    return out


def _present(data: dict, path: str) -> bool:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def check_file(file: str | os.PathLike = PARAMS_FILE) -> dict[str, Any]:
    """Load every section of a params file with its type, and check that the per-task sections name the same
    tasks (:func:`pipeline.config.task_names.check_task_lists`); returns ``{dotted path: value}``.

    Raises:
        PipelineError: the first bad section, key or value, named.
    """
    data = read_yaml(file)
    found = sections(data)
    values = dict(zip(found, load(found, file=file)))
    check_task_lists(data)
    check_schemes(values.get("quantize.schemes", []), data)
    return values


def check_schemes(schemes: list[str], data: dict) -> None:
    """Each entry of ``quantize.schemes`` is a registered scheme with its ``quantize.<scheme>`` section, once.

    Raises:
        PipelineError: the first unknown, repeated or section-less scheme, named.
    """
    for i, name in enumerate(schemes):
        SCHEMES.get(name, f"quantize.schemes[{i}]")
        if name in schemes[:i]:
            raise PipelineError(f"{PARAMS_FILE}: 'quantize.schemes[{i}]': {name!r} is listed twice")
        if not _present(data, f"quantize.{name}"):
            raise PipelineError(f"{PARAMS_FILE}: 'quantize.schemes[{i}]': {name!r} has no 'quantize.{name}' section")


def section_type(path: str, file: str | os.PathLike = PARAMS_FILE) -> Any:
    """The type of the section at ``path`` (a :data:`FIXED` path, a plug-in section, or an entry of a mapping
    section such as ``tasks.cls``)."""
    if path in FIXED:
        return FIXED[path]
    parent, _, key = path.rpartition(".")
    if parent in PLUGINS:
        return PLUGINS[parent].get(key, path).params
    if parent in FIXED and getattr(FIXED[parent], "__origin__", None) is dict:
        lookup(read_yaml(file), path)  # a missing entry is named
        return FIXED[parent].__args__[1]
    raise PipelineError(f"{PARAMS_FILE}: unknown section '{path}'")
