"""Seconds a stage spends in model forward/backward, against its wall time (the scale rehearsal's profiler).

Off unless the environment variable ``PIPELINE_PROFILE`` names a file when this module is imported: then
every :func:`model_time` block adds its wall seconds to a process-wide total, and at exit the process appends
one strict-JSON line ``{"stage", "pid", "model_s", "wall_s"}`` to that file (``stage``: DVC's ``DVC_STAGE``,
else the script's name; ``wall_s``: seconds since this module's import, so interpreter start-up and the
first imports before it are not in it; ``model_s`` <= ``wall_s``). Each process of a multi-process run
writes its own line. ``bench/scale_rehearsal.py`` sets the variable and reads the lines.

The hooks wrap the training loop's forward+backward of each optimizer step (:mod:`pipeline.train.loop`) and
each validation forward pass (:func:`pipeline.tasks.base.all_logits`). Off, :func:`model_time` returns one
shared ``contextlib.nullcontext``: no clock, no synchronisation, nothing written. On CUDA, a block is
synchronised at its two edges only (``torch.cuda.synchronize``), so queued kernels are counted where they
run; this costs some overlap, so profiled GPU runs are slightly slower than unprofiled ones.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch

ENV = "PIPELINE_PROFILE"
_PATH = os.environ.get(ENV) or None
_START = time.perf_counter()
_OFF = contextlib.nullcontext()
_state = {"model_s": 0.0, "depth": 0}


def enabled() -> bool:
    """True when ``PIPELINE_PROFILE`` was set at import."""
    return _PATH is not None


def model_time(device: torch.device | str):
    """A context manager adding the seconds of its block to the model total (nested blocks count once);
    ``device``: where the block's kernels run (CUDA is synchronised at the block's edges). A no-op when off."""
    return _OFF if _PATH is None else _timed(torch.device(device))


@contextlib.contextmanager
def _timed(device: torch.device) -> Iterator[None]:
    outer = _state["depth"] == 0
    _state["depth"] += 1
    if outer and device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    try:
        yield
    finally:
        if outer and device.type == "cuda":
            torch.cuda.synchronize(device)
        _state["depth"] -= 1
        if outer:
            _state["model_s"] += time.perf_counter() - start


def record() -> dict:
    """This process's line: ``{stage, pid, model_s, wall_s}`` (seconds, rounded to ms)."""
    stage = os.environ.get("DVC_STAGE") or Path(sys.argv[0]).stem or "python"
    return {"stage": stage, "pid": os.getpid(), "model_s": round(_state["model_s"], 3),
            "wall_s": round(time.perf_counter() - _START, 3)}


def _write() -> None:
    with open(_PATH, "a", encoding="utf-8") as f:  # one short append per process: lines do not interleave
        f.write(json.dumps(record(), allow_nan=False) + "\n")


if _PATH is not None:
    atexit.register(_write)
