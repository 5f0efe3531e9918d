"""Measuring a model artifact: task metrics, size, parameters, sparsity and CPU latency."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

from pipeline.artifacts import WEIGHT_FORMATS, WEIGHTS, read_meta, read_tensors
from pipeline.sparse_storage import expand
from pipeline.weight_quant import dequantized_state
from pipeline.features import collate
from pipeline.params import EvaluateParams, TaskParams
from pipeline.tasks import logits, rows, train_features

# Quantization side tensors are bookkeeping, not parameters.
_NOT_PARAMS = ("weight_scale", "weight_zero_point")


def stored_parameters(path: str | Path) -> tuple[int, int]:
    """``(total, non_zero)`` element counts of the tensors stored in an artifact's weights file.

    Counting the file (not a live model) covers dense, pruned, compact and quantized artifacts alike
    (compact matrices are expanded first); scales and zero points of quantized weights are excluded,
    integer buffers such as ``position_ids`` too.
    """
    total = nonzero = 0
    meta = read_meta(path)
    tensors = expand(read_tensors(Path(path) / WEIGHTS))
    if meta["format"] in WEIGHT_FORMATS:  # packed int4 etc.: count the weights they stand for
        tensors = dequantized_state(tensors, meta["quantization"], str(Path(path) / WEIGHTS))
    for name, tensor in tensors.items():
        if name.endswith(_NOT_PARAMS) or tensor.dtype in (torch.int64, torch.int32):
            continue
        total += tensor.numel()
        nonzero += int(torch.count_nonzero(tensor))
    return total, nonzero


def latency_inputs(task: TaskParams, data_dir: str | Path, tokenizer, batch_size: int) -> dict[str, torch.Tensor]:
    """A fixed batch of real validation inputs of ``batch_size`` rows for timing."""
    split_rows = rows(task, data_dir, "validation")
    picked = (split_rows * batch_size)[:batch_size]
    feats = train_features(task, picked, tokenizer)[:batch_size]  # labels are dropped below
    batch = collate(feats, tokenizer.pad_token_id)
    return {k: v for k, v in batch.items() if k not in ("labels", "start_positions", "end_positions")}


@torch.inference_mode()
def cpu_latency(model: torch.nn.Module, inputs: dict[str, torch.Tensor], params: EvaluateParams) -> dict:
    """Wall-clock forward latency on CPU with a fixed thread count.

    Returns:
        ``{"latency_ms_p50", "latency_ms_p90", "latency_batch_size", "latency_threads"}``.
    """
    model = model.to("cpu").eval()
    previous = torch.get_num_threads()
    torch.set_num_threads(params.threads)
    try:
        for _ in range(params.latency_warmup):
            logits(model, inputs)
        times = []
        for _ in range(params.latency_repeats):
            start = time.perf_counter()
            logits(model, inputs)
            times.append((time.perf_counter() - start) * 1000)
    finally:
        torch.set_num_threads(previous)
    times.sort()
    p90 = times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]
    return {
        "latency_ms_p50": statistics.median(times),
        "latency_ms_p90": p90,
        "latency_batch_size": params.latency_batch_size,
        "latency_threads": params.threads,
    }


def size_facts(path: str | Path) -> dict:
    """Size on disk of the weights file and the whole artifact directory, in bytes."""
    root = Path(path)
    return {
        "size_bytes": (root / WEIGHTS).stat().st_size,
        "artifact_bytes": sum(p.stat().st_size for p in root.rglob("*") if p.is_file()),
    }


@torch.inference_mode()
def logit_error(reference: torch.nn.Module, other: torch.nn.Module, data: list[dict[str, torch.Tensor]]) -> dict:
    """How far ``other``'s task logits are from ``reference``'s on the same batches.

    Per-token QA logits are compared on real (non-padding) tokens only.

    Returns:
        ``{"logit_max_abs_error", "logit_mean_abs_error", "compared_logits"}``.
    """
    diffs = []
    for batch in data:
        mask = batch["attention_mask"].bool()
        for ref, out in zip(logits(reference, batch), logits(other, batch)):
            d = (ref.float() - out.float()).abs()
            diffs.append(d[mask] if d.shape == mask.shape else d.flatten())
    d = torch.cat(diffs)
    return {"logit_max_abs_error": float(d.max()), "logit_mean_abs_error": float(d.mean()), "compared_logits": d.numel()}
