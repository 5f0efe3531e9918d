"""The task metrics as ``evaluate`` metric modules, loadable offline by path, under the hub's names.

``glue/glue.py``, ``squad/squad.py`` and ``squad_v2/squad_v2.py`` take the inputs and return the keys of the
hub's official ``glue`` (one config per GLUE task), ``squad`` and ``squad_v2`` metrics, and compute through
:mod:`pipeline.metrics.glue` and :mod:`pipeline.metrics.squad`, the functions the pipeline scores with, so their
values are the pipeline's (tested). The stages call those functions directly: importing ``evaluate`` costs seconds per process, and a
stage script's directory (``stages/``, first on ``sys.path``) holds an ``evaluate.py`` that would shadow the
library. With hub access ``evaluate.load("glue", "cola")`` is the official module for the same call, to
compare against::

    from pipeline.metrics.modules import load_module, path
    load_module("glue", "cola").compute(predictions=[1, 0, 1], references=[1, 1, 1])
    evaluate.load(str(path("squad_v2"))).compute(predictions=[...], references=[...])  # the same module

``evaluate.load`` copies a script into its modules cache (``HF_MODULES_CACHE``, by default
``~/.cache/huggingface/modules``) under a directory named by the hash of the script's text, so an edited
script gets a new copy and a stale one is never imported; the pipeline code a script imports
(``pipeline.metrics.glue``, ``pipeline.metrics.squad``) is imported from the installed package, never copied.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
"""The directory of the module directories; from ``__file__``, so it works installed or from a source tree."""
NAMES = ("glue", "squad", "squad_v2")


def path(name: str) -> Path:
    """The directory of the metric module ``name`` (one of :data:`NAMES`), as ``evaluate.load`` takes it.

    Raises:
        ValueError: for an unknown name.
    """
    if name not in NAMES:
        raise ValueError(f"unknown metric module {name!r} (known: {', '.join(NAMES)})")
    return ROOT / name


@functools.cache
def load_module(name: str, config: str | None = None):
    """The ``evaluate`` module ``name`` (config ``config``) loaded from :func:`path`, once per process.

    Kept in memory: ``compute`` writes no prediction files. The instance is shared by every caller in the
    process, which is safe as long as each scoring is one ``compute(predictions=..., references=...)`` call
    (no ``add_batch`` left pending between calls).

    Raises:
        ValueError: for an unknown name; ``KeyError`` for a config the module does not have.
    """
    import evaluate  # here: importing it costs seconds

    return evaluate.load(str(path(name)), config, keep_in_memory=True)


def by_id(records: Iterable[Mapping[str, Any]], key: str, what: str) -> dict[str, Any]:
    """``{record["id"]: record[key]}`` of hub-style input records (``what`` names them in errors).

    Raises:
        ValueError: if two records share an id (the hub modules would keep the last one silently).
    """
    out: dict[str, Any] = {}
    for record in records:
        qid = record["id"]
        if qid in out:
            raise ValueError(f"{what}: question id {qid!r} occurs more than once")
        out[qid] = record[key]
    return out
