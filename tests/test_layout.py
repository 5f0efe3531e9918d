"""The layout rules: thin stages, short functions, no import cycles between modules or packages."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from import_closure import ROOT, SRC, module_file

PIPELINE = SRC / "pipeline"


def test_stage_entrypoints_are_thin():
    long = {p.name: n for p in (ROOT / "stages").glob("*.py") if (n := len(p.read_text().splitlines())) > 60}
    assert not long, f"stage scripts over 60 lines: {long}"


def test_no_function_over_60_lines():
    long = []
    for path in [*PIPELINE.rglob("*.py"), *(ROOT / "stages").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 60:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, long


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """``module -> modules it imports`` inside ``pipeline`` (:func:`imports`), imports made by name included."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in PIPELINE.rglob("*.py"):
        name = _module_name(path)
        graph[name] |= imports(ast.parse(path.read_text()), name)
    return graph


def imports(tree: ast.Module, name: str) -> set[str]:
    """The ``pipeline`` modules that the module ``name`` (parsed as ``tree``) imports.

    ``from pipeline.x import y`` is an edge to the submodule ``pipeline.x.y`` when ``y`` is one, else to
    ``pipeline.x`` (whose ``__init__`` defines ``y``). Imports made by name count too (:func:`named_imports`).
    """
    targets = set(named_imports(tree))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets |= {f"{node.module}.{a.name}" if module_file(f"{node.module}.{a.name}") else node.module
                        for a in node.names}
    return {t for t in targets if t.startswith("pipeline") and module_file(t) and t != name}


def named_imports(tree: ast.Module) -> set[str]:
    """Modules imported by a string literal: ``importlib.import_module("pipeline.x.y")``, and the package of a
    plug-in registry, ``Registry("pipeline.x", ...)``, which imports its modules by name."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if func in ("import_module", "Registry") and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (a list of nodes), or None when it is acyclic."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles_between_modules():
    assert _cycle(import_graph()) is None, _cycle(import_graph())


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """``graph`` between top-level packages (``pipeline.prune``, ``pipeline.models``...)."""
    packages: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        top = ".".join(module.split(".")[:2])
        packages[top] |= {".".join(t.split(".")[:2]) for t in targets} - {top}
    return packages


def test_no_import_cycles_between_packages():
    """Packages (``pipeline.prune``, ``pipeline.models``...) form layers: no two import each other, imports made
    by name included (a registry in a lower package that imports a higher one's modules would be a cycle)."""
    packages = package_graph(import_graph())
    assert _cycle(packages) is None, _cycle(packages)


def test_import_graph_sees_real_edges():
    """The checks above can fail: the graph holds the edges we know exist."""
    graph = import_graph()
    assert "pipeline.prune.masks" in graph["pipeline.prune.magnitude"]
    assert "pipeline.prune" in graph["pipeline.prune.magnitude"]  # register, from the package __init__
    assert "pipeline.tasks.glue" in graph["pipeline.tasks.classification"]
    assert "pipeline.models.compact" in graph["pipeline.models.store"]  # importlib.import_module("...")
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_imports_made_by_name_are_edges():
    """A registry of a higher package's plug-ins kept in a lower one (what ``models/formats.py`` held before:
    ``Registry("pipeline.quantize", ...)``) is an edge, and makes the package layers a cycle."""
    source = ('SCHEMES = Registry("pipeline.quantize", "quantization scheme")\n'
              'x = importlib.import_module("pipeline.export")\n')
    tree = ast.parse(source)
    assert named_imports(tree) == {"pipeline.quantize", "pipeline.export"}
    assert imports(tree, "pipeline.models.formats") == {"pipeline.quantize", "pipeline.export"}
    assert imports(tree, "pipeline.quantize") == {"pipeline.export"}  # a registry of its own package: no edge
    graph = import_graph()
    assert _cycle(package_graph(graph)) is None
    graph["pipeline.models.formats"] |= imports(tree, "pipeline.models.formats")
    assert _cycle(package_graph(graph)) is not None


def test_every_registry_lives_in_the_package_of_its_plugins():
    """Each ``Registry("pipeline.x", ...)`` is defined in ``pipeline/x/__init__.py`` (one rule for every kind)."""
    found = {}
    for path in PIPELINE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Registry" and node.args:
                found[node.args[0].value] = _module_name(path)
    assert found == {p: p for p in found}, found
    assert set(found) >= {"pipeline.prune", "pipeline.merge", "pipeline.quantize", "pipeline.export",
                          "pipeline.tasks", "pipeline.models.families"}
