"""Memory footprint of a forward pass: CPU RSS in a fresh Python process per batch size (Linux, when asked),
CUDA peak allocated memory in the evaluate stage's own process.

Why a fresh process: resident memory is a property of a whole process, and a process that has loaded other
models, run other batches or merely been forked from a large parent carries their pages. Each measurement
starts ``python -m pipeline.evaluation.memory`` (interpreter, torch and the project's loader only), which
loads the artifact, builds the batch and runs the forward pass; the runs for batch 1 and the large batch go
side by side (resident memory is per process, so they do not disturb each other) and finish before any
timing starts.

Why not ``resource.getrusage``: a process started with ``subprocess`` reports as its ``ru_maxrss`` (and its
parent as ``RUSAGE_CHILDREN``) at least the parent's resident size at the moment it was started, because
Linux carries the high-water mark over ``exec`` (measured: a 14 MB child of a 320 MB parent reported
321,700 kB). The child therefore reads its own ``VmRSS``/``VmHWM`` from ``/proc/self/status`` and resets the
high-water mark through ``/proc/self/clear_refs`` (Linux >= 4.0) right before the measured call.

Definitions (MB = 10^6 bytes, as ``size_mb`` elsewhere), per batch ``<label>`` (``bs1``, ``large``):

- ``cpu_<label>_peak_rss_mb``: the process's peak resident set size (``VmHWM``) during the measured forward
  pass: interpreter, libraries, the loaded weights and the pass's activations and workspace; what a
  process serving the model at that batch size needs resident.
- ``cpu_<label>_forward_rss_mb``: that peak minus the resident size just before the measured pass
  (``VmRSS``), i.e. the increase the forward pass itself causes over the loaded model.

Before the measured pass the model runs the same batch once (one-time allocations such as kernel caches
and first-touched library code stay resident and are part of the baseline, not of the increase), then
unreachable objects are collected and freed heap memory is handed back to the system (glibc
``malloc_trim``), so that the baseline holds only live memory. Both passes run the model as loaded (its
stored dtype or quantized format) under ``torch.inference_mode`` with ``threads`` CPU threads.

These fresh processes run only when ``evaluate.memory`` is true (seconds per evaluation). On CUDA no fresh
process is needed: :func:`cuda_forward_memory` measures the large batch in the evaluate stage's own process
under bf16 autocast, as :mod:`pipeline.evaluation.speed` times it, with the variant alone on the device:
``cuda_large_max_allocated_mb`` is ``torch.cuda.max_memory_allocated`` over the measured pass after a warm-up
pass and ``reset_peak_memory_stats``: the peak of memory held by tensors (weights included, the caching
allocator's unused reserve not) on the device. Without CUDA the key is absent, as the ``cuda_*`` timings are.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from pipeline.artifacts import load_model
from pipeline.core.errors import PipelineError

MB = 1e6
STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def status_bytes(field: str) -> int:
    """``field`` (``VmRSS``, ``VmHWM``) of ``/proc/self/status`` in bytes (the file states kB = 1024 bytes)."""
    for line in STATUS.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise PipelineError(f"{STATUS}: no {field} line")


def reset_peak() -> None:
    """Set this process's ``VmHWM`` to its current ``VmRSS`` (``echo 5 > /proc/self/clear_refs``)."""
    CLEAR_REFS.write_text("5")


def check_platform() -> None:
    """``PipelineError`` unless this is Linux with the ``/proc`` files and glibc ``malloc_trim`` used here."""
    if not (STATUS.is_file() and CLEAR_REFS.exists() and hasattr(ctypes.CDLL(None), "malloc_trim")):
        raise PipelineError(f"memory measurement needs Linux with {STATUS}, {CLEAR_REFS} and glibc malloc_trim")


def _trim() -> None:
    """Free unreachable objects, then hand freed heap memory back to the system (glibc ``malloc_trim``)."""
    gc.collect()
    ctypes.CDLL(None).malloc_trim(0)


@torch.inference_mode()
def cpu_forward_memory(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, float]:
    """``{"peak_rss_mb", "forward_rss_mb"}`` of one forward pass of ``model`` on ``inputs`` in this process
    (module docstring: warm-up pass, ``malloc_trim``, reset of the peak, measured pass)."""
    model.eval()
    model(**inputs)
    _trim()
    before = status_bytes("VmRSS")
    reset_peak()
    model(**inputs)
    peak = status_bytes("VmHWM")
    return {"peak_rss_mb": peak / MB, "forward_rss_mb": (peak - before) / MB}


@torch.inference_mode()
def cuda_forward_memory(model: torch.nn.Module, inputs: dict[str, torch.Tensor],
                        device: torch.device | str = "cuda") -> dict[str, float]:
    """``{"max_allocated_mb"}``: ``torch.cuda.max_memory_allocated`` over one bf16-autocast forward pass after a
    warm-up pass, on the CUDA ``device``, in this process (module docstring). ``model`` is moved there and stays;
    whatever else this process holds on the device at the time counts too, so call it with the model alone
    there."""
    model = model.to(device).eval()
    inputs = {k: v.to(device) for k, v in inputs.items()}
    with torch.autocast("cuda", dtype=torch.bfloat16):
        model(**inputs)
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        model(**inputs)
        torch.cuda.synchronize(device)
    return {"max_allocated_mb": torch.cuda.max_memory_allocated(device) / MB}


def device_memory(model: torch.nn.Module, inputs: dict[str, torch.Tensor], device: torch.device) -> dict[str, float]:
    """``{"cuda_large_max_allocated_mb"}`` of :func:`cuda_forward_memory` on a CUDA ``device`` (``inputs``: the
    large batch); ``{}`` on any other device (its memory is measured only by the fresh CPU processes)."""
    if device.type != "cuda":
        return {}
    return {"cuda_large_max_allocated_mb": cuda_forward_memory(model, inputs, device)["max_allocated_mb"]}


def _command(model_dir: Path, head: str, inputs: Path, threads: int) -> list[str]:
    return [sys.executable, "-m", "pipeline.evaluation.memory", str(model_dir), head, str(inputs),
            "--threads", str(threads)]


def _environment(threads: int) -> dict[str, str]:
    """The child's environment: this package importable first, ``threads`` OpenMP threads."""
    package_root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": str(threads)}


def _collect(runs: dict[str, subprocess.Popen], logs: Path) -> dict[str, dict]:
    """Wait for every run; ``{label: its JSON result}``, or a :class:`PipelineError` with a failed run's last
    line of ``<logs>/<label>.err``."""
    results, failed = {}, []
    for label, proc in runs.items():
        out, _ = proc.communicate()
        if proc.returncode != 0:
            err = (logs / f"{label}.err").read_text().strip().splitlines() or [f"exit code {proc.returncode}"]
            failed.append(f"{label}: {err[-1]}")
        else:
            results[label] = json.loads(out.strip().splitlines()[-1])
    if failed:
        raise PipelineError(f"memory measurement failed ({'; '.join(failed)})")
    return results


class MemoryRuns:
    """Measuring processes started by :func:`start_memory`; :meth:`result` waits for them. As a context
    manager, leaving the block stops runs still going (an error elsewhere) and removes their input files."""

    def __init__(self, runs: dict[str, subprocess.Popen], tmp: tempfile.TemporaryDirectory):
        self.runs, self.tmp = runs, tmp

    def result(self) -> dict[str, float]:
        """``cpu_<label>_peak_rss_mb``, ``cpu_<label>_forward_rss_mb`` per label (module docstring); ``{}`` when
        nothing was started. Raises :class:`PipelineError` if a run failed."""
        try:
            results = _collect(self.runs, Path(self.tmp.name))
        finally:
            self.close()
        return {f"{run}_{key}": value for run, measured in results.items() for key, value in measured.items()}

    def close(self) -> None:
        for proc in self.runs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.tmp.cleanup()

    def __enter__(self) -> MemoryRuns:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start_memory(model_dir: str | Path, head: str, batches: dict[str, dict[str, torch.Tensor]],
                 threads: int) -> MemoryRuns:
    """Start measuring the peak CPU memory of a forward pass of the artifact at each batch, each in its own fresh
    process (none for ``batches={}``); the caller may compute other things meanwhile (nothing that is timed) and
    then call :meth:`MemoryRuns.result`.

    Args:
        model_dir: the artifact (loaded with :func:`pipeline.artifacts.load_model` and ``head``).
        batches: ``{label: model inputs}``, e.g. ``{"bs1": ..., "large": ...}`` (real validation inputs).
        threads: CPU threads of each process.

    Raises:
        PipelineError: not Linux (:func:`check_platform`).
    """
    check_platform()
    tmp = tempfile.TemporaryDirectory(prefix="memory-")
    runs, env = {}, _environment(threads)
    for label, batch in batches.items():
        inputs = Path(tmp.name) / f"{label}.safetensors"
        save_file({k: v.contiguous() for k, v in batch.items()}, str(inputs))
        with open(Path(tmp.name) / f"cpu_{label}.err", "w") as err:  # a file: a full pipe would block it
            runs[f"cpu_{label}"] = subprocess.Popen(
                _command(Path(model_dir), head, inputs, threads), env=env, stdout=subprocess.PIPE, stderr=err,
                text=True)
    return MemoryRuns(runs, tmp)


def memory_facts(model_dir: str | Path, head: str, batches: dict[str, dict[str, torch.Tensor]],
                 threads: int) -> dict[str, float]:
    """:func:`start_memory` and wait for the result (:meth:`MemoryRuns.result`)."""
    with start_memory(model_dir, head, batches, threads) as runs:
        return runs.result()


def main(argv: list[str] | None = None) -> None:
    """The measuring process: load the artifact and the batch, print the CPU measurement as one JSON line."""
    p = argparse.ArgumentParser(description="Peak CPU memory of one forward pass (run by memory_facts).")
    p.add_argument("model", type=Path)
    p.add_argument("head")
    p.add_argument("inputs", type=Path, help="SafeTensors file of the model inputs")
    p.add_argument("--threads", type=int, required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, _ = load_model(args.model, args.head)
    inputs = load_file(str(args.inputs))
    print(json.dumps(cpu_forward_memory(model, inputs), allow_nan=False))


if __name__ == "__main__":
    main()
