"""Inference speed of a variant against the dense baseline, timed interleaved in one process, within a budget.

Timing the two models call by call in alternating order exposes both to the same machine state (clock
boosts, other processes, cache warmth), so the ``speedup`` ratio is meaningful even when absolute latencies
drift between runs.

Where: on the device the variant runs on in this run (the run's device, :func:`run_device`: the GPU of a GPU
server, unless the variant's format is CPU-only, e.g. dynamic int8 or an ONNX Runtime graph; the CPU on a
CPU-only machine), and, when ``evaluate.cpu_timing`` is set, on the CPU too (deployment timing). CPU timing
uses ``time.perf_counter`` with ``evaluate.threads`` threads; CUDA timing uses CUDA events around each call
(synchronised once per call, after its end event), under bf16 autocast, after a warm-up.

How long: each batch size stops after ``latency_repeats`` timed rounds or once ``latency_budget_s`` seconds
(warm-up included) have passed, whichever comes first, with at least one warm-up round (when
``latency_warmup`` >= 1) and one timed round, so a large model on a slow device never costs minutes.
Keys are ``<device>_<label>_...`` (``cpu_bs1_p50_ms``, ``cuda_large_speedup``); ``_calls`` says how many timed
calls each model made and ``_p10_ms``/``_p50_ms``/``_p90_ms`` give their spread.
"""

from __future__ import annotations

import contextlib
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


def float32_model(model: torch.nn.Module) -> bool:
    """Whether the model's floating-point parameters are float32 (then CUDA timing runs it under bf16 autocast;
    a model already in a low-precision kernel's dtype, e.g. torchao's bf16 Linears, runs as it is: autocast
    would cast its quantized weights)."""
    first = next((p for p in model.parameters() if p.is_floating_point()), None)
    return first is None or first.dtype == torch.float32


def _cuda_call(model: torch.nn.Module, inputs: Inputs) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=float32_model(model)):
        start.record()
        Task.logits(model, inputs)
        end.record()
    torch.cuda.synchronize()  # the edge of the timed region: the events' times are read after it
    return start.elapsed_time(end)


# One timed forward ``(model, inputs) -> ms`` per device type, and how the models run there (``timing_autocast``).
CALLS: dict[str, Callable[[torch.nn.Module, Inputs], float]] = {"cpu": _cpu_call, "cuda": _cuda_call}
AUTOCAST = {"cpu": "none", "cuda": "bf16"}


@torch.inference_mode()
def interleaved(models: dict[str, torch.nn.Module], inputs: Inputs, warmup: int, repeats: int,
                call: Callable[[torch.nn.Module, Inputs], float] = _cpu_call,
                budget_s: float = math.inf) -> dict[str, list[float]]:
    """Per-call latencies in ms of every model on the same inputs, alternating which goes first.

    Args:
        models: ``{name: model}`` already on the inputs' device, in eval mode.
        warmup: untimed rounds (one call per model each) before timing.
        repeats: the most timed rounds.
        call: one timed forward ``(model, inputs) -> ms`` (CPU wall clock or CUDA events).
        budget_s: wall-clock seconds, warm-up included, after which no new round starts; the first warm-up
            round and the first timed round always run, so a budget of 0 gives one timed call per model.

    Returns:
        ``{name: [ms per call]}``: between 1 and ``repeats`` values each, the same number for every model.
    """
    start = time.perf_counter()

    def spent() -> bool:
        return time.perf_counter() - start >= budget_s

    for w in range(warmup):
        if w and spent():
            break
        for model in models.values():
            call(model, inputs)
    names = list(models)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        if r and spent():
            break
        for name in names if r % 2 == 0 else names[::-1]:
            times[name].append(call(models[name], inputs))
    return times


def summarize(times: list[float], batch_size: int) -> dict[str, float]:
    """``{"p10_ms", "p50_ms", "p90_ms", "seq_per_s", "calls"}``; throughput from the median batch latency."""
    p50 = percentile(times, 0.5)
    return {"p10_ms": percentile(times, 0.1), "p50_ms": p50, "p90_ms": percentile(times, 0.9),
            "seq_per_s": batch_size / (p50 / 1000), "calls": len(times)}


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
    # The spread of the per-round ratios: how far apart two variants' speed-ups must be to differ.
    ratios = [b / v for v, b in zip(variant, baseline)]
    out[f"{prefix}_speedup_p10"], out[f"{prefix}_speedup_p90"] = percentile(ratios, 0.1), percentile(ratios, 0.9)
    return out


def _place(x, device: torch.device):
    """``x`` (a module or a tensor) on ``device``."""
    return x.to(device)


@contextlib.contextmanager
def _threads(device: torch.device, threads: int):
    """``threads`` torch CPU threads while timing on the CPU (restored after); nothing elsewhere."""
    previous = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def device_speed(variant: torch.nn.Module, baseline: torch.nn.Module, batches: dict[str, Inputs],
                 device: torch.device, cfg) -> dict[str, float]:
    """Latency, throughput and speedup against ``baseline`` for each named batch on ``device``.

    Both models are moved to ``device`` (and stay there); on the CPU they run with ``cfg.threads`` threads, on
    CUDA under bf16 autocast timed by CUDA events.

    Args:
        batches: ``{label: inputs}``, e.g. ``{"bs1": ..., "large": ...}``; the batch size is read from
            ``input_ids``.
        cfg: :class:`pipeline.evaluation.EvaluateParams` (``latency_warmup``, ``latency_repeats``,
            ``latency_budget_s`` per batch, ``threads``).

    Returns:
        flat ``{"<device>_<label>_p10_ms", "_p50_ms", "_p90_ms", "_seq_per_s", "_calls", "_baseline_p50_ms",
        "_speedup", "_speedup_p10", "_speedup_p90"}`` (speedup: :func:`paired_speedup`, > 1 when the variant is
        faster; ``_speedup_p10``/``_p90``: nearest-rank percentiles of the per-round ratios ``baseline / variant``).

    Raises:
        KeyError: a device type without a timer in :data:`CALLS`.
    """
    call, out = CALLS[device.type], {}
    with _threads(device, cfg.threads):
        models = {"variant": _place(variant, device).eval(), "baseline": _place(baseline, device).eval()}
        for label, inputs in batches.items():
            there = {k: _place(v, device) for k, v in inputs.items()}
            t = interleaved(models, there, cfg.latency_warmup, cfg.latency_repeats, call, cfg.latency_budget_s)
            out |= _ratios(f"{device.type}_{label}", t["variant"], t["baseline"], inputs["input_ids"].shape[0])
    return out


def runs_on_cuda(devices: tuple[str, ...]) -> bool:
    """Whether a model whose format runs on ``devices`` can run here on CUDA."""
    return torch.cuda.is_available() and "cuda" in devices


def run_device(device: torch.device, devices: tuple[str, ...]) -> torch.device:
    """Where a variant runs in this run: the run's ``device`` (:func:`pipeline.core.runtime.setup`) when the
    variant's format runs on that device type (``devices``, :func:`pipeline.artifacts.format_devices`), else
    the CPU (e.g. dynamic int8 kernels and ONNX Runtime graphs on a GPU server)."""
    return device if device.type in devices else torch.device("cpu")


def _headline(device: torch.device, cfg, autocast: str = "none") -> dict:
    """The keys every speed file has, whatever was timed (:func:`speed_facts`)."""
    return {"timing_device": device.type, "timing_autocast": autocast,
            "cpu_timing": cfg.cpu_timing, "latency_budget_s": cfg.latency_budget_s,
            "large_batch_size": cfg.latency_batch_size,
            "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else "none"}


def absent_speed(device: torch.device, cfg) -> dict:
    """The speed keys of a variant that no kernel runs on ``device``: :func:`speed_facts`'s identity keys with
    the headline numbers ``latency_ms_p50``, ``latency_ms_p90``, ``speedup`` (and its spread) null and no
    per-device timings."""
    return {**_headline(device, cfg), "latency_ms_p50": None, "latency_ms_p90": None, "speedup": None,
            "speedup_p10": None, "speedup_p90": None}


def speed_facts(variant: torch.nn.Module, baseline: torch.nn.Module, device: torch.device,
                make_inputs: Callable[[int], Inputs], cfg, cpu_too: bool = True) -> dict:
    """Speed of ``variant`` against ``baseline`` on ``device`` and, when ``cfg.cpu_timing``, on the CPU.

    Args:
        device: where the variant runs (:func:`run_device`); the timing device.
        make_inputs: ``batch_size -> inputs`` of real data; batch 1 and ``cfg.latency_batch_size`` are timed.
        cfg: :class:`pipeline.evaluation.EvaluateParams`.
        cpu_too: False when the variant's kernel does not run on the CPU (a torchao CUDA kernel): no second
            timing on the CPU then, whatever ``cfg.cpu_timing`` says.

    Returns:
        flat dict of :func:`device_speed` keys for ``device`` (and ``cpu_*`` keys when ``cfg.cpu_timing``: the
        same measurement when ``device`` is the CPU, else a second one on the CPU), plus ``timing_device``,
        ``timing_autocast``, ``cpu_timing``, ``latency_budget_s``, ``large_batch_size``, ``threads`` (only when
        something was timed on the CPU), ``cuda_device`` (GPU name, or "none") and the headline numbers
        ``latency_ms_p50``/``latency_ms_p90``/``speedup`` with ``speedup_p10``/``speedup_p90`` (timing device,
        large batch).
    """
    batches = {"bs1": make_inputs(1), "large": make_inputs(cfg.latency_batch_size)}
    out: dict = _headline(device, cfg, AUTOCAST.get(device.type, "none") if float32_model(variant) else "none")
    out |= device_speed(variant, baseline, batches, device, cfg)
    out |= {"latency_ms_p50": out[f"{device.type}_large_p50_ms"], "latency_ms_p90": out[f"{device.type}_large_p90_ms"],
            "speedup": out[f"{device.type}_large_speedup"], "speedup_p10": out[f"{device.type}_large_speedup_p10"],
            "speedup_p90": out[f"{device.type}_large_speedup_p90"]}
    if cfg.cpu_timing and cpu_too and device.type != "cpu":
        out |= device_speed(variant, baseline, batches, torch.device("cpu"), cfg)
    if device.type == "cpu" or (cfg.cpu_timing and cpu_too):
        out["threads"] = cfg.threads
    return out
