"""Inference speed of a variant against the dense baseline, timed interleaved in one process.

Timing the two models call by call in alternating order exposes both to the same machine state (clock
boosts, other processes, cache warmth), so the ``speedup`` ratio is meaningful even when absolute latencies
drift between runs. CPU timing uses ``time.perf_counter`` with a fixed thread count; CUDA timing uses CUDA
events after a warm-up, under bf16 autocast.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import torch

from pipeline.data.features import collate
from pipeline.tasks.base import LABEL_KEYS, Task

Inputs = dict[str, torch.Tensor]


def latency_inputs(task: Task, data_dir: str | Path, tokenizer, batch_size: int) -> Inputs:
    """A fixed batch of real validation inputs of ``batch_size`` rows for timing (targets dropped)."""
    split_rows = task.rows(data_dir, "validation")
    picked = (split_rows * batch_size)[:batch_size]
    feats = task.train_features(picked, tokenizer)[:batch_size]
    batch = collate(feats, tokenizer.pad_token_id)
    return {k: v for k, v in batch.items() if k not in LABEL_KEYS}




def percentile(times: list[float], q: float) -> float:
    """Nearest-rank ``q``-quantile (0..1) of ``times``."""
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _cpu_call(model: torch.nn.Module, inputs: Inputs) -> float:
    start = time.perf_counter()
    Task.logits(model, inputs)
    return (time.perf_counter() - start) * 1000


def _cuda_call(model: torch.nn.Module, inputs: Inputs) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        start.record()
        Task.logits(model, inputs)
        end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end)


@torch.inference_mode()
def interleaved(models: dict[str, torch.nn.Module], inputs: Inputs, warmup: int, repeats: int,
                call: Callable[[torch.nn.Module, Inputs], float] = _cpu_call) -> dict[str, list[float]]:
    """Per-call latencies in ms of every model on the same inputs, alternating which goes first.

    Args:
        models: ``{name: model}`` already on the inputs' device, in eval mode.
        warmup: untimed calls per model before timing.
        repeats: timed calls per model.
        call: one timed forward ``(model, inputs) -> ms`` (CPU wall clock or CUDA events).

    Returns:
        ``{name: [ms per call]}`` (``repeats`` values each).
    """
    for model in models.values():
        for _ in range(warmup):
            call(model, inputs)
    names = list(models)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            times[name].append(call(models[name], inputs))
    return times


def summarize(times: list[float], batch_size: int) -> dict[str, float]:
    """``{"p50_ms", "p90_ms", "seq_per_s"}``; throughput from the median batch latency."""
    p50 = percentile(times, 0.5)
    return {"p50_ms": p50, "p90_ms": percentile(times, 0.9), "seq_per_s": batch_size / (p50 / 1000)}


def paired_speedup(variant: list[float], baseline: list[float]) -> float:
    """Median over repeats of ``baseline[i] / variant[i]``.

    Calls ``i`` of the two models ran back to back, so each ratio sees one machine state; the median of these
    ratios is steadier under load drift than the ratio of the two medians.
    """
    ratios = sorted(b / v for v, b in zip(variant, baseline))
    mid = len(ratios) // 2
    return ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2


def _ratios(prefix: str, variant: list[float], baseline: list[float], batch_size: int) -> dict[str, float]:
    v, b = summarize(variant, batch_size), summarize(baseline, batch_size)
    out = {f"{prefix}_{k}": x for k, x in v.items()}
    out[f"{prefix}_baseline_p50_ms"] = b["p50_ms"]
    out[f"{prefix}_speedup"] = paired_speedup(variant, baseline)
    return out


def cpu_speed(variant: torch.nn.Module, baseline: torch.nn.Module, batches: dict[str, Inputs], warmup: int,
              repeats: int, threads: int) -> dict[str, float]:
    """CPU latency, throughput and speedup against ``baseline`` for each named batch.

    Args:
        batches: ``{label: inputs}``, e.g. ``{"bs1": ..., "large": ...}``; the batch size is read from
            ``input_ids``.

    Returns:
        flat ``{"cpu_<label>_p50_ms", "_p90_ms", "_seq_per_s", "_baseline_p50_ms", "_speedup"}``
        (speedup: :func:`paired_speedup`, > 1 when the variant is faster).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    out: dict[str, float] = {}
    try:
        models = {"variant": variant.to("cpu").eval(), "baseline": baseline.to("cpu").eval()}
        for label, inputs in batches.items():
            t = interleaved(models, inputs, warmup, repeats)
            out |= _ratios(f"cpu_{label}", t["variant"], t["baseline"], inputs["input_ids"].shape[0])
    finally:
        torch.set_num_threads(previous)
    return out


def cuda_speed(variant: torch.nn.Module, baseline: torch.nn.Module, batches: dict[str, Inputs], warmup: int,
               repeats: int) -> dict[str, float]:
    """As :func:`cpu_speed` on the current CUDA device under bf16 autocast (keys ``cuda_<label>_...``).

    Models are moved to the GPU and back to the CPU afterwards.
    """
    device = torch.device("cuda")
    models = {"variant": variant.to(device).eval(), "baseline": baseline.to(device).eval()}
    out: dict[str, float] = {}
    try:
        for label, inputs in batches.items():
            on_gpu = {k: v.to(device) for k, v in inputs.items()}
            t = interleaved(models, on_gpu, warmup, repeats, call=_cuda_call)
            out |= _ratios(f"cuda_{label}", t["variant"], t["baseline"], inputs["input_ids"].shape[0])
    finally:
        for model in models.values():
            model.to("cpu")
    return out


def runs_on_cuda(devices: tuple[str, ...]) -> bool:
    """Whether a model whose format runs on ``devices`` can run here on CUDA."""
    return torch.cuda.is_available() and "cuda" in devices

def speed_facts(variant: torch.nn.Module, baseline: torch.nn.Module, devices: tuple[str, ...],
                make_inputs: Callable[[int], Inputs], large_batch: int, warmup: int, repeats: int,
                threads: int) -> dict[str, float]:
    """CPU (and, when present and supported, CUDA) speed of ``variant`` against ``baseline``.

    Args:
        devices: device types the variant's format runs on (:attr:`pipeline.models.formats.Scheme.devices`).
        make_inputs: ``batch_size -> inputs`` of real data.
        large_batch: the throughput batch size; batch 1 is always timed too.

    Returns:
        flat dict of :func:`cpu_speed` (and :func:`cuda_speed`) keys for labels ``bs1`` and ``large``,
        plus ``large_batch_size``, ``threads``, ``cuda_device`` (name, or "none") and the headline numbers
        ``latency_ms_p50``/``latency_ms_p90``/``speedup`` (CPU, large batch).
    """
    batches = {"bs1": make_inputs(1), "large": make_inputs(large_batch)}
    out: dict = {"large_batch_size": large_batch, "threads": threads, "cuda_device": "none"}
    out |= cpu_speed(variant, baseline, batches, warmup, repeats, threads)
    out |= {"latency_ms_p50": out["cpu_large_p50_ms"], "latency_ms_p90": out["cpu_large_p90_ms"],
            "speedup": out["cpu_large_speedup"]}
    if runs_on_cuda(devices):
        out |= cuda_speed(variant, baseline, batches, warmup, repeats)
        out["cuda_device"] = torch.cuda.get_device_name()
    return out
