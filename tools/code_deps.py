"""What a stage's code depends on: the static import closure of its script inside ``src/pipeline``, plus the
plug-in modules (one per file, found by name through ``pipeline.core.registry.Registry``) it runs:

- a plug-in picked by a stage argument (a pruning method, a quantization scheme) is a path ``dvc.yaml``
  templates (e.g. ``src/pipeline/prune/${item.method}.py``), plus the helpers of its package;
- a plug-in picked by data (a model family: a checkpoint's ``model_type``; a task type: ``tasks.<name>.type``)
  can be any of them, so a stage whose closure holds the package's ``__init__`` depends on all of them
  (:data:`BY_DATA`).

The one implementation: :mod:`tools.dvc_yaml` writes ``dvc.yaml``'s code deps with :func:`stage_code_deps`,
``tests/test_params.py`` checks every rendered stage against :func:`expected_code_deps`.
"""

from __future__ import annotations

import ast
import functools
import importlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
if str(SRC) not in sys.path:  # this checkout's library, also where another one is pip-installed (editable)
    sys.path.insert(0, str(SRC))
# Packages whose modules are plug-ins found by name (pipeline.core.registry.Registry) -> their registry.
PLUGIN_PACKAGES = {"prune": "pipeline.prune:METHODS", "merge": "pipeline.merge:METHODS",
                   "quantize": "pipeline.quantize:SCHEMES", "export": "pipeline.export:RUNTIMES",
                   "tasks": "pipeline.tasks:TYPES", "models/families": "pipeline.models.families:FAMILIES"}
# Those whose plug-in is picked by data, not by a stage argument: every one of them is a dep.
BY_DATA = ("tasks", "models/families")
TEMPLATED = re.compile(r"^src/pipeline/([\w/]+)/\$\{[^}]+\}\.py$")
CODE_PREFIXES = ("src/", "stages/")


def module_file(name: str) -> Path | None:
    """The file of a ``pipeline.*`` module (package ``__init__`` for packages), or None if outside."""
    if name != "pipeline" and not name.startswith("pipeline."):
        return None
    base = SRC / Path(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _imported(path: Path) -> set[str]:
    """Module names ``path`` imports (absolute imports; ``from a import b`` gives ``a`` and ``a.b``)."""
    stat = path.stat()
    return _parsed_imports(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=None)
def _parsed_imports(path: Path, mtime_ns: int, size: int) -> frozenset[str]:  # keyed by the file's version
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            # "from pipeline import tasks" imports the submodule pipeline.tasks
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return frozenset(names)


def closure(script: Path) -> set[Path]:
    """Every ``src/pipeline`` file ``script`` imports, directly or transitively (packages' __init__ too), and
    every plug-in of a :data:`BY_DATA` package whose ``__init__`` it reaches (with their imports)."""
    seen = static_closure(script)
    for package in BY_DATA:
        if SRC / "pipeline" / package / "__init__.py" in seen:
            for file in plugin_files(package).values():
                seen |= {file} | static_closure(file)
    return seen


def static_closure(script: Path) -> set[Path]:
    """Every ``src/pipeline`` file ``script`` imports by ``import`` statements, directly or transitively."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        for name in _imported(path):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
                file = module_file(".".join(parts[:i]))
                if file is not None and file not in seen:
                    seen.add(file)
                    todo.append(file)
    return seen


def plugin_files(package: str) -> dict[str, Path]:
    """``{name: file}`` of every plug-in registered in ``pipeline.<package>`` (imports them all)."""
    module, _, attr = PLUGIN_PACKAGES[package].partition(":")
    registry = getattr(importlib.import_module(module), attr)
    return {name: module_file(registry.module(name)) for name in registry.all()}


def helpers(package: str) -> set[Path]:
    """Modules the plug-ins of ``package`` import besides each other: shared by every stage that runs one."""
    plugins = plugin_files(package)
    return set().union(*(closure(f) for f in plugins.values())) - set(plugins.values())


def rel(paths) -> set[str]:
    return {str(p.relative_to(ROOT)) for p in paths}


def expected_code_deps(script: str, templated: list[str]) -> set[str]:
    """The ``.py`` deps a stage must declare: its script, the script's closure, and for each templated
    plug-in path (``src/pipeline/<package>/${...}.py``) that path plus the helpers of the package."""
    deps = {script} | rel(closure(ROOT / script))
    for path in templated:
        package = TEMPLATED.match(path).group(1)
        deps |= {path} | rel(helpers(package))
    return deps


def compress(deps: set[str]) -> list[str]:
    """``deps`` with every directory under ``src/pipeline`` whose ``.py`` files are all in ``deps`` written as
    the directory (the largest such directories), so ``dvc.yaml`` lists a whole package on one line."""
    dirs = sorted({str(Path(d).parent) for d in deps if d.startswith("src/pipeline/")}, key=len)
    covered: list[str] = []
    for d in dirs:
        files = rel((ROOT / d).rglob("*.py"))
        if files and files <= deps and not any(d.startswith(c + "/") for c in covered):
            covered.append(d)
    rest = {d for d in deps if not any(d.startswith(c + "/") for c in covered)}
    return sorted(covered) + sorted(rest)


def expand(deps: set[str]) -> set[str]:
    """Directory deps replaced by the ``.py`` files under them (the inverse of :func:`compress`)."""
    out = set()
    for d in deps:
        path = ROOT / d
        out |= rel(path.rglob("*.py")) if path.is_dir() else {d}
    return out


def stage_code_deps(script: str, templated: list[str]) -> list[str]:
    """The code deps to write for a stage, in order: its script, its templated plug-in paths, then the rest of
    :func:`expected_code_deps` (:func:`compress`ed, sorted).

    Args:
        script: the stage's entrypoint, ``stages/<name>.py``.
        templated: plug-in paths ``src/pipeline/<package>/${...}.py`` (one per plug-in the stage runs).
    """
    first = [script, *templated]
    return first + compress(expected_code_deps(script, templated) - set(first))
