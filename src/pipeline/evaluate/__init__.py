"""Measuring an artifact (the ``evaluate`` stage): task metrics and per-class diagnostics, model facts read from
the stored weights, CPU/GPU speed against the dense baseline, and the files that hold the results."""

from __future__ import annotations

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
    """Timed forward calls per model and batch (variant and baseline interleaved)."""
    threads: int = 1
    """CPU threads during latency measurement (fixed so numbers compare across variants)."""
    memory: bool = True
    """Measure the peak memory of a forward pass (:mod:`pipeline.evaluate.memory`: fresh processes, some
    seconds per evaluation); false leaves the memory keys out of the speed file."""

    def __post_init__(self):
        for name in ("batch_size", "latency_batch_size", "latency_repeats", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.latency_warmup < 0:
            raise ValueError("latency_warmup must be >= 0")
