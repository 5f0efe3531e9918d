"""Pruning at BERT-base scale: one gradual-pruning mask update and the one-shot heads/FFN importance set-up.

A randomly initialised BERT-base sequence classifier (a ``BertConfig`` built offline: 12 layers, hidden 768,
FFN 3072, 84.9M prunable encoder weights) on the run's device (CUDA when there is one, else the CPU):

- ``mask_update``: what :class:`pipeline.prune.gradual.GradualPruner` does every ``frequency`` steps: global
  magnitude masks of every prunable weight (:func:`pipeline.prune.masks.magnitude_masks`) applied in place.
  ``impl: device`` is the library's; ``impl: stable_sort`` is the code it replaced (a CPU copy of every
  weight, concatenated and stable-sorted), timed once for comparison (``--no-old`` skips it) and checked to
  give the same masks.
- ``importance_setup``: a prune stage's work before a one-shot structured method prunes: reading the
  importance batches from an SST-2-sized train split (67,349 generated rows, encoded by the task as the
  stage does: only ``batches * 32`` rows) and the importance scores of every head (``heads``) or FFN neuron
  (``ffn``) over them, with the params' number of batches (``prune.<method>.batches``). ``old_encode_s``: what
  encoding the whole split, as before, takes.

Prints one JSON line per measurement, with ``device``, ``threads`` and ``loadavg`` (``/proc/loadavg``, the
1-minute load): ``seconds`` are wall-clock times, ``cpu_s`` the process's CPU seconds over the same span (on a
CPU with one thread, what the wall time would be on an idle machine; on a GPU, only the host's share).

    python bench/prune_scale.py               # BERT-base (the stable sort alone takes ~25 s on one CPU thread)
    python bench/prune_scale.py --small       # a tiny config and split, a smoke test
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import yaml
from transformers import BertConfig, BertForSequenceClassification

from common import ROOT, device_name, emit, sync, time_call
from pipeline.core.runtime import setup
from pipeline.data import synthetic
from pipeline.data.vocab import build_tokenizer
from pipeline.prune import METHODS, PruneContext
from pipeline.prune.importance import gate_importance, head_importance
from pipeline.prune.masks import apply_masks_, magnitude_masks, prunable_weights
from pipeline.models import families
from pipeline.tasks import get as get_task
from pipeline.tasks.classification import ClassificationParams

BERT_BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
SMALL = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
SST2_TRAIN = 67_349


def stable_sort_masks(weights: dict[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """Global masks as before: every weight copied to the CPU, concatenated, stable-sorted by magnitude."""
    flat = torch.cat([w.detach().flatten().cpu() for w in weights.values()])
    mask = torch.ones(flat.numel(), dtype=torch.bool)
    mask[torch.sort(flat.abs(), stable=True).indices[: round(sparsity * flat.numel())]] = False
    out, offset = {}, 0
    for k, w in weights.items():
        out[k] = mask[offset: offset + w.numel()].view(w.shape)
        offset += w.numel()
    return out


def context() -> dict:
    return {"threads": torch.get_num_threads(), "loadavg": float(Path("/proc/loadavg").read_text().split()[0])}


def mask_update(model, device: torch.device, sparsity: float, repeats: int, old: bool) -> None:
    """Time one global mask update on the dense weights (the masks, median of ``repeats``, then applying them
    once); the stable sort once; check that both give the same masks."""
    weights = prunable_weights(model)
    n = sum(w.numel() for w in weights.values())
    times = time_call(lambda: magnitude_masks(weights, sparsity, "global"), device, warmup=1, repeats=repeats)
    c0 = time.process_time()
    masks = magnitude_masks(weights, sparsity, "global")
    cpu_s = time.process_time() - c0
    before = None
    if old:
        t0, c0 = time.perf_counter(), time.process_time()
        before = stable_sort_masks(weights, sparsity)
        emit({"bench": "prune_scale", "what": "mask_update", "impl": "stable_sort", "device": device_name(device),
              "weights": n, "sparsity": sparsity, "seconds": time.perf_counter() - t0,
              "cpu_s": time.process_time() - c0, "repeats": 1, **context()})
    apply_s = time_call(lambda: apply_masks_(model, masks), device, warmup=0, repeats=1)[0]
    emit({"bench": "prune_scale", "what": "mask_update", "impl": "device", "device": device_name(device),
          "weights": n, "sparsity": sparsity, "seconds": statistics.median(times) + apply_s,
          "masks_s": statistics.median(times), "masks_min_s": min(times), "masks_cpu_s": cpu_s, "apply_s": apply_s,
          "repeats": repeats,
          "masks_equal": None if before is None else all(torch.equal(masks[k].cpu(), before[k]) for k in before),
          **context()})


def importance_setup(model, device: torch.device, rows: list[dict], tokenizer, task) -> None:
    """Time each one-shot structured method's set-up: importance batches from the split, then the scores."""
    batches = yaml.safe_load((ROOT / "params.yaml").read_text())["prune"]
    for name in ("heads", "ffn"):
        method = METHODS.get(name)
        params = method.params(**batches[name])
        sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        ctx = PruneContext.for_task(task, rows, tokenizer, method.examples(params), device=device)
        sync(device)
        t1 = time.perf_counter()
        if name == "heads":
            head_importance(model, ctx.data, ctx.loss_fn)
        else:
            family = families.of(model)
            modules = [family.ffn_out(layer) for layer in family.layers(model)]
            gate_importance(model, modules, [m.in_features for m in modules], ctx.data, ctx.loss_fn)
        sync(device)
        t2 = time.perf_counter()
        tokens = sum(int(b["attention_mask"].sum()) for b in ctx.data)
        emit({"bench": "prune_scale", "what": "importance_setup", "method": name, "device": device_name(device),
              "rows": len(rows), "batches": params.batches, "examples": method.examples(params),
              "tokens": tokens, "encode_s": t1 - t0, "importance_s": t2 - t1, "seconds": t2 - t0,
              "cpu_s": time.process_time() - c0, **context()})
    t0, c0 = time.perf_counter(), time.process_time()
    task.train_features(rows, tokenizer)
    emit({"bench": "prune_scale", "what": "old_encode", "rows": len(rows), "old_encode_s": time.perf_counter() - t0,
          "cpu_s": time.process_time() - c0, **context()})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="a tiny config and split (smoke test)")
    p.add_argument("--sparsity", type=float, default=0.6, help="the update's target sparsity (default 0.6)")
    p.add_argument("--repeats", type=int, default=3, help="timed mask updates (default 3; median reported)")
    p.add_argument("--no-old", action="store_true", help="skip the stable-sort comparison")
    args = p.parse_args()
    device = setup(0)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tokenizer(Path(tmp) / "tok")
    rows = synthetic.generate_classification(2_000 if args.small else SST2_TRAIN, 1)
    task = get_task(ClassificationParams(max_length=128))
    config = BertConfig(vocab_size=len(tokenizer) if args.small else 30522, pad_token_id=tokenizer.pad_token_id,
                        **(SMALL if args.small else BERT_BASE))
    model = BertForSequenceClassification(config).to(device)
    mask_update(model, device, args.sparsity, args.repeats, not args.no_old)
    importance_setup(BertForSequenceClassification(config).to(device), device, rows, tokenizer, task)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
