"""A repository copy with placeholder outputs: every stage's outputs exist and are committed to DVC, so
``dvc status`` is clean and a change shows exactly the stages it would rerun (without running any)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


def commit_placeholders(repo: Path) -> Path:
    """Write a placeholder for every output of every stage of ``repo`` (a git repository), ``dvc commit`` them
    and check that ``dvc status`` is then clean. Returns ``repo``."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc:
        for stage in dvc.index.stages:
            for out in stage.outs:
                path = Path(out.fs_path)
                if path.suffix == ".json":
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text("{}\n")
                else:
                    path.mkdir(parents=True, exist_ok=True)
                    (path / "placeholder").write_text(stage.addressing)
    subprocess.run(["dvc", "commit", "--force", "--quiet"], cwd=repo, check=True)
    status = subprocess.run(["dvc", "status", "--json"], cwd=repo, check=True, capture_output=True, text=True)
    assert json.loads(status.stdout) == {}, status.stdout
    return repo


def placeholder_copy(repo: Path, dest: Path) -> Path:
    """A copy of a placeholder repository (git history and DVC cache included, DVC's state and locks left out),
    for a test that edits files: the session's repository stays as built."""
    import shutil

    shutil.copytree(repo, dest, symlinks=True, ignore=lambda d, names: {"tmp"} & set(names)
                    if Path(d).name == ".dvc" else set())
    return dest
