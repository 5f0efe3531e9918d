"""What a stage's code depends on: the static import closure of its script inside ``src/pipeline``, plus the
plug-in modules (one method per file) it runs, which ``dvc.yaml`` templates (e.g.
``src/pipeline/prune/${item.method}.py``) because the script imports them by name at run time.

Run as a script to print every stage's code deps, ready for ``dvc.yaml``.
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
                   "quantize": "pipeline.quantize:SCHEMES"}
TEMPLATED = re.compile(r"^src/pipeline/(\w+)/\$\{[^}]+\}\.py$")


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
    """Every ``src/pipeline`` file ``script`` imports, directly or transitively (packages' __init__ too)."""
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
    sys.path.insert(0, str(SRC))
    module, _, attr = PLUGIN_PACKAGES[package].partition(":")
    registry = getattr(importlib.import_module(module), attr)
    return {name: SRC / "pipeline" / package / f"{name}.py" for name in registry.all()}


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


if __name__ == "__main__":
    import yaml

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        body = stage.get("do", stage)
        script = next(a for a in body["cmd"].split() if a.startswith("stages/"))
        templated = [d for d in body.get("deps", []) if isinstance(d, str) and TEMPLATED.match(d)]
        print(f"{name}:")
        for dep in compress(expected_code_deps(script, templated)):
            print(f"      - {dep}")
