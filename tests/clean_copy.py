"""A copy of the repository as a clean clone has it (no outputs, lock or caches of local runs).

Shared by the end-to-end tests and ``bench/dvc_repro_time.py``; plain stdlib, so the bench needs no pytest.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Outputs and caches of a local run are not part of the project.
TOP_IGNORE = {".git", "data", "models", "metrics", "reports", "dvc.lock", ".pytest_cache", "build"}


def copy_ignore(directory: str, names: list[str]) -> set[str]:
    """``shutil.copytree`` ignore function: drops :data:`TOP_IGNORE` at the root, DVC's cache and bytecode."""
    here = Path(directory).resolve()
    ignored = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
    if here == ROOT:
        ignored |= TOP_IGNORE & set(names)
    if here == ROOT / ".dvc":
        ignored |= {"cache", "tmp"} & set(names)
    return ignored


def clean_copy(dest: Path) -> Path:
    """Copy the repository to ``dest`` (which must not exist) as a clean clone would have it."""
    shutil.copytree(ROOT, dest, ignore=copy_ignore)
    return dest
