"""Shared bits of the benchmarks: device facts, peak rates, FLOP counts, timers, JSON-lines output."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from collections.abc import Callable

import torch

# The benchmarks run as scripts from any directory: import this checkout's library, not an installed one.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# Dense (no 2:4 sparsity) bf16 tensor-core peak per GPU, in FLOP/s, from the vendor data sheets. Matched
# as a substring of torch.cuda.get_device_name(); PCIe/NVL parts have lower clocks and are left out
# (their MFU is reported as null rather than against the wrong peak).
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12}
_NOT_SXM = ("PCIe", "NVL")


def device_name(device: torch.device) -> str:
    """``cpu`` or the CUDA device's marketing name."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def peak_bf16_flops(device: torch.device) -> float | None:
    """The dense bf16 peak of ``device`` from :data:`PEAK_BF16_FLOPS`, or None (CPU, unknown GPU)."""
    if device.type != "cuda":
        return None
    name = device_name(device)
    if any(tag in name for tag in _NOT_SXM):
        return None
    return next((peak for key, peak in PEAK_BF16_FLOPS.items() if key in name), None)


def train_flops_per_token(model: torch.nn.Module, seq: int) -> float:
    """Training FLOPs per token of a BERT encoder: ``6 * N + 12 * L * d * T``.

    ``N`` counts the weights of the Linear layers (every multiply-add of a dense layer costs 2 FLOPs forward
    and 4 backward); embedding lookups do no matmul and are left out. The second term is self-attention's
    ``Q K^T`` and ``P V`` products (``2 * 2 * T * d`` per token and layer forward, times 3 with backward),
    with ``L`` layers, hidden size ``d`` and sequence length ``T`` (as in the PaLM paper's MFU appendix).
    """
    n = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    cfg = model.config
    return 6 * n + 12 * cfg.num_hidden_layers * cfg.hidden_size * seq


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> list[float]:
    """Seconds per call of ``fn`` after ``warmup`` untimed calls: CUDA events on a GPU, perf_counter on CPU."""
    for _ in range(warmup):
        fn()
    times = []
    if device.type == "cuda":
        sync(device)
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1000)
    else:
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return times


def emit(record: dict) -> None:
    """Print one measurement as one JSON line on stdout (flushed, so partial runs keep their lines)."""
    print(json.dumps(record, sort_keys=False), flush=True)
    sys.stdout.flush()
