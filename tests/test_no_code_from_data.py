"""No library or stage code can run code found in a data file: no pickle, no ``torch.load`` without
``weights_only=True``, no ``eval``/``exec``. Artifacts and checkpoints sit on shared filesystems and remotes;
loading one must never execute anything it contains."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Modules whose loaders rebuild arbitrary Python objects (pickle underneath, or code objects).
UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def _dotted(node: ast.AST) -> str:
    """``torch.serialization.load`` for the expression ``torch.serialization.load``; '' for other shapes."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else ""


def _weights_only(call: ast.Call) -> bool:
    return any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
               for k in call.keywords)


def _unsafe_call(node: ast.Call) -> str | None:
    name = _dotted(node.func)
    if name in ("eval", "exec"):
        return f"{name}()"
    if name in ("torch.load", "torch.serialization.load") and not _weights_only(node):
        return f"{name}() without weights_only=True"
    return None


def _unsafe_import(node: ast.Import | ast.ImportFrom) -> str | None:
    modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
    for module in modules:
        if module.split(".")[0] in UNSAFE_MODULES or "pickle" in module:
            return f"import {module}"
    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("torch"):
        if any(a.name == "load" for a in node.names):
            return f"from {node.module} import load (call torch.load(..., weights_only=True))"
    return None


def _pickle_name(node: ast.AST) -> str | None:
    """A name, attribute or keyword that mentions pickle (``read_pickle``, ``allow_pickle=True``, ...)."""
    if isinstance(node, ast.keyword) and node.arg and "pickle" in node.arg.lower():
        harmless = isinstance(node.value, ast.Constant) and node.value.value is False  # allow_pickle=False
        return None if harmless else f"{node.arg}="
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return name if "pickle" in name.lower() else None


def violations(source: str) -> list[str]:
    """``"line N: what"`` for every construct in ``source`` that could run code from a data file.

    Strings and comments do not count (a docstring may say "no pickle").
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            what = _unsafe_call(node)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            what = _unsafe_import(node)
        else:
            what = _pickle_name(node)
        if what:
            found.append(f"line {node.lineno}: {what}")
    return found


def test_no_file_in_src_or_stages_can_run_code_from_data():
    files = sorted([*(ROOT / "src").rglob("*.py"), *(ROOT / "stages").glob("*.py")])
    assert len(files) > 50  # the scan sees the library
    bad = {str(f.relative_to(ROOT)): v for f in files if (v := violations(f.read_text()))}
    assert bad == {}


@pytest.mark.parametrize("source", [
    "import pickle",
    "import cloudpickle as cp",
    "from joblib import load",
    "import torch\nstate = torch.load(path)",
    "import torch\nstate = torch.load(path, weights_only=False)",
    "from torch import load",
    "x = eval(text)",
    "exec(code)",
    "import pandas as pd\ndf = pd.read_pickle(path)",
    "import numpy as np\na = np.load(path, allow_pickle=True)",
    "import torch\ntorch.serialization.load(f)",
])
def test_the_scan_finds_each_unsafe_construct(source):
    assert violations(source), source


def test_the_scan_allows_safe_code():
    source = '''
"""Saved without pickle; a checkpoint never calls torch.load(path) or eval(...)."""
import numpy as np
import torch
state = torch.load(path, map_location="cpu", weights_only=True)
model.eval()
a = np.load(path, allow_pickle=False)
'''
    assert violations(source) == []
