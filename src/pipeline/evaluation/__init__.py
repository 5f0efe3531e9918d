"""Measuring an artifact (the ``evaluate`` stage): task metrics and per-class diagnostics, model facts read from
the stored weights, CPU/GPU speed against the dense baseline, and the files that hold the results.

Named ``evaluation``, not ``evaluate``: ``evaluate`` is the Hugging Face library the task metrics load their
local metric modules with (:mod:`pipeline.metrics.modules`), and a package of the same name reads as that library."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class EvaluateParams:
    """Measurement settings."""

    batch_size: int = 64
    """Batch size for task metrics."""
    latency_batch_size: int = 32
    """The large batch timed for throughput (batch 1 is always timed too)."""
    latency_warmup: int = 3
    """Untimed forward calls per model and batch before timing."""
    latency_repeats: int = 20
    """The most timed forward calls per model and batch (variant and baseline interleaved)."""
    latency_budget_s: float = 10.0
    """Seconds of timing per batch size and device (warm-up included, both models): no new round starts after
    it, whichever of it and ``latency_repeats`` comes first; at least one timed call per model."""
    cpu_timing: bool = False
    """Also time on the CPU (deployment timing with ``threads`` threads) when the variant runs on a GPU; on a
    CPU-only run the timing is on the CPU anyway."""
    threads: int = 1
    """CPU threads whenever timing runs on the CPU (fixed so numbers compare across variants)."""
    memory: bool = False
    """Measure the peak CPU memory (RSS) of a forward pass (:mod:`pipeline.evaluation.memory`: fresh processes,
    seconds per evaluation); false leaves the ``cpu_*_rss_mb`` keys out of the speed file. On CUDA the peak
    allocated memory is measured in the stage's process whatever this says."""

    def __post_init__(self):
        for name in ("batch_size", "latency_batch_size", "latency_repeats", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (math.isfinite(self.latency_budget_s) and self.latency_budget_s >= 0):
            raise ValueError(f"latency_budget_s must be a finite number >= 0, got {self.latency_budget_s}")
        if self.latency_warmup < 0:
            raise ValueError("latency_warmup must be >= 0")
