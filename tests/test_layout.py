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
    """``module -> modules it imports`` inside ``pipeline``. ``from pipeline.x import y`` is an edge to the
    submodule ``pipeline.x.y`` when ``y`` is one, else to ``pipeline.x`` (whose ``__init__`` defines ``y``)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in PIPELINE.rglob("*.py"):
        name = _module_name(path)
        graph[name]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" if module_file(f"{node.module}.{a.name}") else node.module
                           for a in node.names]
            graph[name] |= {t for t in targets if t.startswith("pipeline") and module_file(t) and t != name}
    return graph


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


def test_no_import_cycles_between_packages():
    """Packages (``pipeline.prune``, ``pipeline.models``...) form layers: no two import each other."""
    packages: dict[str, set[str]] = defaultdict(set)
    for module, targets in import_graph().items():
        top = ".".join(module.split(".")[:2])
        packages[top] |= {".".join(t.split(".")[:2]) for t in targets} - {top}
    assert _cycle(packages) is None, _cycle(packages)


def test_import_graph_sees_real_edges():
    """The checks above can fail: the graph holds the edges we know exist."""
    graph = import_graph()
    assert "pipeline.prune.masks" in graph["pipeline.prune.magnitude"]
    assert "pipeline.prune" in graph["pipeline.prune.magnitude"]  # register, from the package __init__
    assert "pipeline.tasks.glue" in graph["pipeline.tasks.classification"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
