"""Files a stage writes: content hashes, directories and files replaced atomically, strict JSON.

Nothing here knows about models or formats, so every stage can use it without depending on model code.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def file_hash(path: str | os.PathLike) -> str:
    """sha256 of one file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dir_hash(path: str | os.PathLike) -> str:
    """sha256 over the relative names and contents of every file in a directory (order independent)."""
    root = Path(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(root)).encode())
        digest.update(file_hash(file).encode())
    return digest.hexdigest()


def _alive(pid: int) -> bool:
    """Whether a process with this id exists (a temp dir of a live writer must not be removed)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def clean_stale_tmp(final: Path) -> list[Path]:
    """Remove ``.<name>.tmp-<pid>`` siblings of ``final`` left by killed writers (pid no longer alive).

    A SIGKILL gives a process no chance to clean up; the next run of the stage does it instead, so no
    leftover can be mistaken for output. Returns the removed paths.
    """
    removed = []
    for tmp in final.parent.glob(f".{glob.escape(final.name)}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[1]
        if pid.isdigit() and (int(pid) == os.getpid() or not _alive(int(pid))):
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into ``SystemExit(143)`` for the block so ``finally`` clauses clean up.

    Python's default SIGTERM action ends the process without unwinding; DVC, schedulers and ``kill``
    send SIGTERM first, so treating it like an exception removes the temporary directory.
    Signal handlers can only be set from the main thread; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling directory that replaces ``path`` only if the block succeeds.

    A failing or killed stage leaves no half-written ``path`` for DVC to cache: the rename is the
    commit point. The temporary directory (``.<name>.tmp-<pid>``) is removed on an exception and on
    SIGTERM; one left by a SIGKILL is removed by the next call for the same ``path``.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_tmp(final)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    with _sigterm_raises():
        tmp.mkdir()
        try:
            yield tmp
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a small text file through a temporary sibling and a rename."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_tmp(final)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    try:
        tmp.write_text(text)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Deterministic, strict JSON (sorted keys, fixed indent; NaN and infinity refused) written atomically.

    Raises:
        ValueError: ``data`` holds a non-finite float (an undefined metric must be ``None``, not NaN).
    """
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")


def parents(*paths: str | os.PathLike) -> dict[str, str]:
    """``{path: dir_hash}`` of the input artifacts, for provenance in ``pipeline.json``."""
    return {str(p): dir_hash(p) for p in paths}
