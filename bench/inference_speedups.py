"""Inference speed of each compressed variant against the dense model, at batch 1 and a large batch.

One randomly initialised BERT-base-sized sequence classifier is compressed with the project's own
functions (weights are random, so only speed is meaningful here; accuracy is the pipeline's job):

- ``dense`` in fp32 and bf16 (the baselines),
- ``heads`` / ``ffn`` / ``layers``: ``pipeline.prune`` physical pruning (half the heads, half the FFN
  neurons, half the layers; importance from two synthetic batches),
- ``nm24``: ``pipeline.prune`` 2:4 masks, run dense (zeros only); on CUDA (cc >= 8.0) also
  ``nm24_semi_structured`` through ``pipeline.models.accel.to_semi_structured_``,
- ``int8``: ``pipeline.quantize.dynamic_int8.quantize_dynamic_int8`` (CPU kernels, so CPU only),
- ``fp8``: ``pipeline.models.accel.to_fp8_`` on the encoder's Linears (CUDA cc >= 8.9 only),
- ``heads_ffn`` (half the heads, then half the FFN neurons) and ``heads_ffn_fp8`` (the same with fp8 Linears):
  the combinations that stack the speed-ups.

On a GPU the structured variants run in bf16; on a CPU in fp32 (and int8). All variants of one batch size
are timed interleaved, round-robin, as the evaluate stage does (``pipeline.evaluation.speed.interleaved``):
after ``--warmup`` untimed passes each, every round runs each variant once (the order reversed every other
round), ``--repeats`` rounds, under ``torch.inference_mode`` (CUDA events on a GPU, perf_counter on a CPU).
``ms`` is a variant's median pass; ``speedup_vs_fp32`` / ``_bf16`` are the medians of the per-round ratios
against dense fp32 / bf16 (``pipeline.evaluation.speed.paired_speedup``), so a load change that slows one
round slows every variant alike. Timing variants one block after another instead measured a heads-pruned
BERT-base at 0.58x and dynamic int8 at 0.78x of dense on a busy 2-core CPU, against 1.35x and 1.76x quiet.
One JSON line per (variant, batch):
``{bench, variant, device, dtype, batch, seq, ms, speedup_vs_fp32, speedup_vs_bf16}``; variants
that cannot run on this device print ``{..., "skipped": reason}``.

    python bench/inference_speedups.py                # BERT-base, seq 128, batches 1 and 128
    python bench/inference_speedups.py --small        # tiny config, CPU smoke test
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time

import torch
from transformers import BertConfig, BertForSequenceClassification

from common import device_name, emit
from pipeline.evaluation.speed import paired_speedup

BERT_BASE = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072)
SMALL = dict(vocab_size=1000, hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=256)


def dense_model(config: dict) -> BertForSequenceClassification:
    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(**config, num_labels=2)).eval()


def token_batch(batch: int, seq: int, vocab: int, device: torch.device, labels: bool = False) -> dict:
    g = torch.Generator().manual_seed(batch * 1000 + seq)
    out = {"input_ids": torch.randint(5, vocab, (batch, seq), generator=g),
           "attention_mask": torch.ones(batch, seq, dtype=torch.long)}
    if labels:
        out["labels"] = torch.randint(0, 2, (batch,), generator=g)
    return {k: v.to(device) for k, v in out.items()}


def pruned(dense: torch.nn.Module, method: str, config: dict, data: list[dict]) -> torch.nn.Module:
    """A copy of ``dense`` pruned in place by a registered ``pipeline.prune`` method (fp32, on CPU)."""
    from pipeline.prune import PruneContext, prune_
    from pipeline.prune.ffn import FFNParams
    from pipeline.prune.heads import HeadsParams
    from pipeline.prune.layers import LayersParams
    from pipeline.prune.nm import NMParams

    model = copy.deepcopy(dense).float().cpu()
    params = {"heads": HeadsParams(keep_heads=config["num_attention_heads"] // 2, batches=len(data)),
              "ffn": FFNParams(keep_ratio=0.5, batches=len(data)),
              "layers": LayersParams(keep_layers=max(2, config["num_hidden_layers"] // 2), batches=len(data)),
              "nm": NMParams(n=2, m=4)}[method]
    prune_(model, method, params, PruneContext(data, lambda m, b: m(**b).loss))
    return model.eval()


def variants(dense: torch.nn.Module, config: dict, device: torch.device, small: bool):
    """Yield ``(name, dtype, model or None, skip reason or None)`` for every variant, built lazily."""
    from pipeline.models import accel

    data = [token_batch(4 if small else 8, 32, config["vocab_size"], torch.device("cpu"), labels=True)
            for _ in range(2)]
    gpu = device.type == "cuda"
    work = torch.bfloat16 if gpu else torch.float32
    wname = "bf16" if gpu else "fp32"
    yield "dense", "fp32", copy.deepcopy(dense).float(), None
    yield "dense", "bf16", copy.deepcopy(dense).to(torch.bfloat16), None
    for method, name in (("heads", "heads"), ("ffn", "ffn"), ("layers", "layers"), ("nm", "nm24")):
        yield name, wname, pruned(dense, method, config, data).to(work), None
    both = pruned(pruned(dense, "heads", config, data), "ffn", config, data)  # half the heads, then half the FFN
    yield "heads_ffn", wname, copy.deepcopy(both).to(work), None
    cc = accel.cuda_capability()
    if cc is not None and cc >= accel.SEMI_STRUCTURED_MIN_CC:
        model = pruned(dense, "nm", config, data).to(device=device, dtype=torch.bfloat16)
        converted = accel.to_semi_structured_(model)
        yield "nm24_semi_structured", "bf16", model if converted else None, None if converted else "no layer fits"
    else:
        yield "nm24_semi_structured", "bf16", None, "needs CUDA compute capability >= 8.0"
    if gpu:
        yield "int8", "int8", None, "dynamic int8 kernels are CPU-only"
    else:
        from pipeline.quantize.dynamic_int8 import quantize_dynamic_int8

        yield "int8", "int8", quantize_dynamic_int8(dense), None
    if cc is not None and cc >= accel.FP8_MIN_CC:
        model = copy.deepcopy(dense).to(device=device, dtype=torch.bfloat16)
        accel.to_fp8_(model, lambda m, path: ".encoder." in f".{path}.")
        yield "fp8", "fp8", model, None
        both = both.to(device=device, dtype=torch.bfloat16)
        accel.to_fp8_(both, lambda m, path: ".encoder." in f".{path}.")
        yield "heads_ffn_fp8", "fp8", both, None
    else:
        for name in ("fp8", "heads_ffn_fp8"):
            yield name, "fp8", None, "needs CUDA compute capability >= 8.9"


def timed_call(device: torch.device):
    """One forward pass ``(model, inputs) -> ms``: CUDA events on a GPU, perf_counter on a CPU."""
    def call(model, inputs):
        if device.type != "cuda":
            t0 = time.perf_counter()
            model(**inputs)
            return (time.perf_counter() - t0) * 1000
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        model(**inputs)
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    return call


def measure(models: dict, batch: int, seq: int, vocab: int, warmup: int, repeats: int) -> dict[str, list[float]]:
    """Interleaved per-round latencies (ms) of every model at one batch size; int8 (CPU kernels) is timed on
    the CPU in its own interleaved group with the fp32 dense model (also on the CPU) when the rest is on a GPU."""
    from pipeline.evaluation.speed import interleaved

    groups: dict[torch.device, dict] = {}
    for key, (model, device) in models.items():
        groups.setdefault(device, {})[key] = model
    times: dict = {}
    for device, group in groups.items():
        inputs = token_batch(batch, seq, vocab, device)
        times |= interleaved(group, inputs, warmup, repeats, call=timed_call(device))
    return times


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", action="store_true", help="tiny config, seq 32, batches 1 and 8 (CPU smoke test)")
    p.add_argument("--seq", type=int, default=None, help="tokens per sequence (default 128; 32 with --small)")
    p.add_argument("--batches", type=int, nargs="+", default=None, help="default: 1 128 (1 8 with --small)")
    p.add_argument("--warmup", type=int, default=None, help="untimed passes (default 10; 2 with --small)")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 50; 5 with --small)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = SMALL if args.small else BERT_BASE
    seq = args.seq or (32 if args.small else 128)
    sizes = args.batches or ([1, 8] if args.small else [1, 128])
    warmup = args.warmup or (2 if args.small else 10)
    repeats = args.repeats or (5 if args.small else 50)

    models, skipped = {}, []  # {(variant, dtype, device type): (model, device)}
    for name, dtype, model, skip in variants(dense_model(config), config, device, args.small):
        if model is None:
            skipped.append((name, dtype, skip))
            continue
        run_on = torch.device("cpu") if dtype == "int8" else device  # dynamic int8 kernels are CPU-only
        models[(name, dtype, run_on.type)] = (model.to(run_on).eval(), run_on)
    if ("dense", "fp32", "cpu") not in models and any(d.type == "cpu" for _, d in models.values()):
        models[("dense", "fp32", "cpu")] = (dense_model(config), torch.device("cpu"))  # the CPU group's baseline
    gpu = device_name(device) if device.type == "cuda" else None
    for batch in sizes:
        with torch.inference_mode():
            times = measure(models, batch, seq, config["vocab_size"], warmup, repeats)
        for (name, dtype, where), t in times.items():
            fp32, bf16 = times[("dense", "fp32", where)], times.get(("dense", "bf16", where))
            emit({"bench": "inference_speedups", "variant": name, "device": where, "gpu": gpu, "dtype": dtype,
                  "batch": batch, "seq": seq, "model": "small" if args.small else "bert-base",
                  "ms": round(statistics.median(t), 4), "speedup_vs_fp32": round(paired_speedup(t, fp32), 3),
                  "speedup_vs_bf16": round(paired_speedup(t, bf16), 3) if bf16 else None})
        for name, dtype, skip in skipped:
            emit({"bench": "inference_speedups", "variant": name, "device": device.type, "gpu": gpu, "dtype": dtype,
                  "batch": batch, "seq": seq, "skipped": skip})
    return 0


if __name__ == "__main__":
    sys.exit(main())
