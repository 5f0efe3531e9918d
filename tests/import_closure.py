"""What a stage's code depends on: the static import closure of its script inside ``src/pipeline``, plus the
plug-in modules (one per file, found by name through ``pipeline.core.registry.Registry``) it runs:

- a plug-in picked by a stage argument (a pruning method, a quantization scheme) is a path ``dvc.yaml``
  templates (e.g. ``src/pipeline/prune/${item.method}.py``), plus the helpers of its package;
- a plug-in picked by data (a model family: a checkpoint's ``model_type``; a task type: ``tasks.<name>.type``)
  can be any of them, so a stage whose closure holds the package's ``__init__`` depends on all of them
  (:data:`BY_DATA`).

Run as a script to print every stage's code deps, ready for ``dvc.yaml``; ``--write`` puts them into
``dvc.yaml`` in place (data deps and comments kept).
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
# Packages whose modules are plug-ins found by name (pipeline.core.registry.Registry) -> their registry.
PLUGIN_PACKAGES = {"prune": "pipeline.prune:METHODS", "merge": "pipeline.merge:METHODS",
                   "quantize": "pipeline.quantize:SCHEMES", "export": "pipeline.export:RUNTIMES",
                   "tasks": "pipeline.tasks:TYPES", "models/families": "pipeline.models.families:FAMILIES"}
# Those whose plug-in is picked by data, not by a stage argument: every one of them is a dep.
BY_DATA = ("tasks", "models/families")
TEMPLATED = re.compile(r"^src/pipeline/([\w/]+)/\$\{[^}]+\}\.py$")


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
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            # "from pipeline import tasks" imports the submodule pipeline.tasks
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


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
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
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


def rewrite_dvc_yaml(text: str) -> str:
    """``dvc.yaml`` text with every stage's code deps (``stages/``, ``src/``) replaced by the expected ones:
    the script first, templated plug-in paths next, then the rest (:func:`compress`ed); data deps, their
    comments and everything else are kept as written."""
    out, lines, i, stage = [], text.split("\n"), 0, None
    while i < len(lines):
        line = lines[i]
        if (m := re.match(r"^  ([\w-]+):$", line)) and not line.startswith("   "):
            stage = m.group(1)
        if (dm := re.match(r"^(\s+)deps:$", line)) and stage:
            indent = dm.group(1) + "  "
            out.append(line)
            i += 1
            code, data = [], []
            while i < len(lines) and lines[i].startswith(indent + "- "):
                item = lines[i].strip()[2:].split("#")[0].strip()
                (code if item.startswith(("src/", "stages/")) else data).append(item if item.startswith(("src/", "stages/")) else lines[i])
                i += 1
            script = next(d for d in code if d.startswith("stages/"))
            templated = [d for d in code if TEMPLATED.match(d)]
            first = [script, *templated]
            out += [f"{indent}- {d}" for d in first + compress(expected_code_deps(script, templated) - set(first))]
            out += data
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:  # rewrite dvc.yaml's code deps in place
        (ROOT / "dvc.yaml").write_text(rewrite_dvc_yaml((ROOT / "dvc.yaml").read_text()))
        sys.exit(0)
