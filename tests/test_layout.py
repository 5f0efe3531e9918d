"""The layout rules: stage scripts without logic, short functions, no import cycles between modules or packages."""

from __future__ import annotations

import ast
import importlib.metadata
from collections import defaultdict
from pathlib import Path

import pytest

from tools.code_deps import ROOT, SRC, module_file

PIPELINE = SRC / "pipeline"


STAGE_FUNCTIONS = {"parser": None, "reads": 2, "main": 3}
"""The functions a stage script may define -> the most statements each may hold (None: no limit)."""
STAGE_STATEMENTS = (ast.Assign, ast.Expr, ast.Return)
LOGIC = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try, ast.Match, ast.Raise,
         ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.IfExp, ast.BoolOp, ast.BinOp, ast.UnaryOp,
         ast.Compare, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.NamedExpr,
         ast.Await, ast.Yield, ast.YieldFrom)
BUILDS = (ast.Dict, ast.List, ast.Set, ast.Subscript, ast.JoinedStr)


def _is_main_guard(node: ast.stmt) -> bool:
    """``if __name__ == "__main__": sys.exit(main())``, exactly."""
    return ast.dump(node) == ast.dump(ast.parse('if __name__ == "__main__":\n    sys.exit(main())').body[0])


def stage_logic(source: str, stage: str) -> list[str]:
    """Why the stage script ``source`` (of stage ``stage``) holds logic; [] when it holds none.

    The rule ("a stage parses its arguments, says which params sections it reads, loads them and calls the
    library in a straight line"), checked on the AST:

    - one statement per line, everywhere (no ``a; b``, no ``if x: y``);
    - at module level only the docstring, imports, the functions ``parser``, ``reads`` and ``main``, and the
      closing ``if __name__ == "__main__": sys.exit(main())``;
    - ``main`` is decorated ``@stage_main("<stage>")`` (one error line and exit 2 on bad input);
    - inside those functions only assignments, expression statements (calls) and ``return``, and no ``if``,
      loop, ``with``, ``try``, ``raise``, nested function or class, conditional expression, boolean, comparison
      or arithmetic operator, lambda, comprehension, walrus, ``await`` or ``yield``;
    - ``main`` builds no data either: no dict, list or set display, no subscript, no f-string (metadata and
      labels are assembled in the library), and holds at most 3 statements (parse, load, call); ``reads``
      holds at most 2 (its dict of sections may need one loaded value first, as merge's method does).
    """
    tree = ast.parse(source)
    found = []
    lines = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.stmt)]
    found += [f"line {n}: more than one statement" for n in sorted({n for n in lines if lines.count(n) > 1})]
    for i, node in enumerate(tree.body):
        if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)) or _is_main_guard(node):
            continue
        if not isinstance(node, ast.FunctionDef) or node.name not in STAGE_FUNCTIONS:
            found.append(f"line {node.lineno}: {type(node).__name__} at module level (only parser, reads, main)")
            continue
        found += _function_logic(node, stage)
    return found


def _function_logic(fn: ast.FunctionDef, stage: str) -> list[str]:
    """The logic :func:`stage_logic` finds in one of the stage's functions."""
    found = []
    limit = STAGE_FUNCTIONS[fn.name]
    if limit is not None and len(fn.body) > limit:
        found.append(f"{fn.name}: {len(fn.body)} statements (at most {limit})")
    if fn.name == "main" and [ast.unparse(d) for d in fn.decorator_list] != [f"stage_main({stage!r})"]:
        found.append(f"main: not decorated @stage_main({stage!r})")
    for stmt in fn.body:
        if not isinstance(stmt, STAGE_STATEMENTS):
            found.append(f"line {stmt.lineno}: {type(stmt).__name__} in {fn.name}")
            continue
        for node in ast.walk(stmt):
            if isinstance(node, LOGIC) or (fn.name == "main" and isinstance(node, BUILDS)):
                found.append(f"line {node.lineno}: {type(node).__name__} in {fn.name}")
            if fn.name == "main" and isinstance(node, ast.Tuple) and isinstance(node.ctx, ast.Load):
                found.append(f"line {node.lineno}: Tuple in {fn.name}")
    return found


def test_stage_entrypoints_hold_no_logic():
    """Every ``stages/*.py`` follows :func:`stage_logic`'s rule; the logic lives in ``src/pipeline``."""
    scripts = sorted((ROOT / "stages").glob("*.py"))
    assert scripts, ROOT / "stages"
    found = {p.name: why for p in scripts if (why := stage_logic(p.read_text(), p.stem))}
    assert not found, found


LOGIC_STAGE = '''"""A stage with logic."""
import sys
from pipeline.core.errors import stage_main

HELP = {"a": 1}


def parser():
    p = argparse.ArgumentParser(); return p


@stage_main("wrong")
def main(argv=None):
    args = parser().parse_args(argv)
    if args.x:
        print("x")
    meta = {"rows": [r * 2 for r in args.rows], "fn": lambda: 1}
    write(meta)


if __name__ == "__main__":
    sys.exit(main())
'''


def test_stage_logic_finds_logic():
    """The rule can fail: a snippet with an ``if``, a comprehension, arithmetic, a lambda, a metadata dict, two
    statements on a line, a module-level constant and the wrong decorator is caught on each count."""
    found = stage_logic(LOGIC_STAGE, "mine")
    for why in ["line 9: more than one statement", "line 5: Assign at module level", "main: 4 statements",
                "main: not decorated @stage_main('mine')", "line 15: If in main", "line 17: Dict in main",
                "line 17: ListComp in main", "line 17: BinOp in main", "line 17: Lambda in main"]:
        assert any(f.startswith(why) for f in found), (why, found)
    clean = (ROOT / "stages" / "base.py").read_text()
    assert stage_logic(clean, "base") == []
    assert stage_logic(clean, "prune") == ["main: not decorated @stage_main('prune')"]


CLEAN_STAGE = '''"""A stage without logic."""
import sys

from pipeline.core.errors import stage_main


def parser():
    p = argparse.ArgumentParser()
    return p


@stage_main("mine")
def main(argv=None):
    args = parser().parse_args(argv)
    run(args.x, key=args.y)


if __name__ == "__main__":
    sys.exit(main())
'''


@pytest.mark.parametrize("line, why", [
    ("    if args.x: run(1)", "If in main"),
    ("    for r in args.rows:\n        run(r)", "For in main"),
    ("    with open(args.x) as f:\n        run(f)", "With in main"),
    ("    out = [r for r in args.rows]", "ListComp in main"),
    ("    out = args.n * 2", "BinOp in main"),
    ("    out = args.a or args.b", "BoolOp in main"),
    ("    out = 1 if args.a else 2", "IfExp in main"),
    ("    out = args.a == 'x'", "Compare in main"),
    ("    meta = {'stage': 'x'}", "Dict in main"),
    ("    label = f'prune {args.task}'", "JoinedStr in main"),
    ("    first = args.rows[0]", "Subscript in main"),
    ("    pair = (args.a, args.b)", "Tuple in main"),
    ("    fn = lambda: 1", "Lambda in main"),
    ("    run(1); run(2)", "more than one statement"),
])
def test_stage_logic_finds_each_kind(line, why):
    """Each kind of logic, alone in an otherwise clean stage's ``main``, is found."""
    assert stage_logic(CLEAN_STAGE, "mine") == []
    found = stage_logic(CLEAN_STAGE.replace("    run(args.x, key=args.y)\n", line + "\n"), "mine")
    assert any(why in f for f in found), found


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


# --- one import path per public name; no module named like a library the project imports -------------------

SOURCES = (SRC, ROOT / "stages", ROOT / "tests", ROOT / "bench", ROOT / "profiles", ROOT / "tools")
LOCAL_DIRS = (ROOT / "tests", ROOT / "bench")  # their modules import each other by bare name (sys.path)


def _python_files() -> list[Path]:
    return sorted(p for d in SOURCES for p in d.rglob("*.py"))


def _local_file(module: str, local_dirs=LOCAL_DIRS) -> Path | None:
    """The file of a project module: ``pipeline.*`` under ``src``, ``tools.*``, or a helper module of
    ``tests``/``bench``."""
    if (found := module_file(module)) is not None:
        return found
    if module.startswith("tools.") and (ROOT / Path(*module.split("."))).with_suffix(".py").is_file():
        return (ROOT / Path(*module.split("."))).with_suffix(".py")
    hits = [d / f"{module}.py" for d in local_dirs if "." not in module and (d / f"{module}.py").is_file()]
    return hits[0] if hits else None


def _top_level_bindings(path: Path, local_dirs=LOCAL_DIRS) -> tuple[set[str], set[str]]:
    """``(defined, imported)``: names a module binds at top level by a definition (def, class, assignment...),
    and names it binds only by importing them from another project module (a library imported through a
    guard module, e.g. :mod:`pipeline.export.libraries`, is not a project name)."""
    defined: set[str] = set()
    imported: set[str] = set()
    body = list(ast.parse(path.read_text()).body)
    while body:
        node = body.pop()
        if isinstance(node, (ast.If, ast.Try, ast.With, ast.For)):  # their bodies still bind module names
            body += [*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", []),
                     *(s for h in getattr(node, "handlers", []) for s in h.body)]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                defined |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.ImportFrom) and node.module and _local_file(node.module, local_dirs):
            imported |= {a.asname or a.name for a in node.names}
    return defined, imported - defined


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def reexport_imports(files: list[Path], local_dirs=LOCAL_DIRS) -> list[tuple[str, str, str]]:
    """``(where, module, name)`` of every ``from module import name`` (a project module, ``name`` not a
    submodule of it) where ``module`` does not define ``name`` but imports it from another project module:
    ``name`` then has a second import path besides the module that defines it. Also every ``__all__`` entry
    that its module imports instead of defining (``where`` is then ``<file>: __all__``)."""
    bindings: dict[Path, tuple[set[str], set[str]]] = {}
    found = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
                continue
            source = _local_file(node.module, local_dirs)
            if source is None:
                continue
            defined, imported = bindings.setdefault(source, _top_level_bindings(source, local_dirs))
            for alias in node.names:
                if module_file(f"{node.module}.{alias.name}") is None and alias.name in imported:
                    found.append((f"{_shown(path)}:{node.lineno}", node.module, alias.name))
    for path in files:
        tree = ast.parse(path.read_text())
        defined, imported = _top_level_bindings(path, local_dirs)
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
                names = {e.value for e in ast.walk(node.value) if isinstance(e, ast.Constant)}
                found += [(f"{_shown(path)}: __all__", _module_name(path) if path.is_relative_to(SRC) else path.stem, n)
                          for n in sorted(names & imported)]
    return found


def test_each_name_is_imported_from_the_module_that_defines_it():
    """One import path per public name: ``from pipeline.train.loop import RunFiles`` beside
    ``from pipeline.train.run_files import RunFiles`` leaves a reader two homes for one class."""
    found = [f"{where}: {name} from {module}, which only re-exports it"
             for where, module, name in reexport_imports(_python_files())]
    assert not found, "\n".join(found)


def test_reexport_check_can_fail(tmp_path):
    (tmp_path / "home.py").write_text("class Thing:\n    pass\n")
    (tmp_path / "relay.py").write_text("from home import Thing\n__all__ = ['Thing']\n")
    (tmp_path / "user.py").write_text("from relay import Thing\nfrom home import Thing as T\n")
    found = reexport_imports(sorted(tmp_path.glob("*.py")), local_dirs=(tmp_path,))
    assert found == [("user.py:1", "relay", "Thing"), ("relay.py: __all__", "relay", "Thing")]


def imported_libraries(files: list[Path]) -> set[str]:
    """Top-level names of installed distributions (not the project) that ``files`` import."""
    installed = set(importlib.metadata.packages_distributions()) - {"pipeline"}
    names = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names & installed


# Plug-in modules named by their registry key, which artifacts and params.yaml record: renaming the file would
# rename the format. Absolute imports keep ``import onnx`` the library inside them.
# Names that are the pipeline's own vocabulary: a registry key written into artifacts, a DVC stage's name.
NAMED_BY_REGISTRY = {"pipeline.export.onnx": "export format 'onnx' (pipeline.json, dvc.yaml outputs)",
                     "pipeline.stages.evaluate": "the evaluate stage's logic, named like the DVC stage and its script"}


def library_named_modules(libraries: set[str]) -> list[str]:
    """Modules and packages under ``src/pipeline`` whose last name is one of ``libraries``."""
    modules = {_module_name(p) for p in PIPELINE.rglob("*.py")}
    return sorted(m for m in modules if m.rsplit(".", 1)[-1] in libraries)


def test_no_module_is_named_like_an_imported_library():
    """``pipeline.evaluate`` read as the ``evaluate`` library; ``evaluate``, ``datasets``, ``transformers``...
    name the libraries only."""
    libraries = imported_libraries(_python_files())
    assert {"evaluate", "datasets", "transformers", "torch"} <= libraries  # the check sees the real imports
    clashes = [m for m in library_named_modules(libraries) if m not in NAMED_BY_REGISTRY]
    assert not clashes, f"modules named like an imported library: {clashes}"
    assert set(NAMED_BY_REGISTRY) <= set(library_named_modules(libraries)), "stale NAMED_BY_REGISTRY entry"
    assert library_named_modules({"evaluation", "loop"}) == ["pipeline.evaluation", "pipeline.train.loop"]
