"""Static import closure of a stage script inside ``src/pipeline`` (used by the consistency tests)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


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
            # "from pipeline import params" imports the submodule pipeline.params
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


if __name__ == "__main__":
    for script in sorted((ROOT / "stages").glob("*.py")):
        print(script.stem, sorted(str(p.relative_to(ROOT)) for p in closure(script)))
