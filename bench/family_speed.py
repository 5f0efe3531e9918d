"""CPU latency of every model family: dense against head-pruned, FFN-pruned and dynamic-int8 variants.

For each family with an adapter (``pipeline.models.families``) one randomly initialised sequence classifier
is built at the same shape with the pipeline's own ``init_model`` (``model.base: scratch``, ``model.type:
<family>``), then compressed with the pipeline's functions:

- ``heads``: ``pipeline.models.structure.prune_heads_`` keeping half the heads of every layer,
- ``ffn``: ``prune_ffn_`` keeping half the FFN neurons of every layer (ModernBERT: of its GLU),
- ``int8``: ``pipeline.quantize.dynamic_int8.quantize_dynamic_int8`` of the dense model (CPU int8 kernels).

Weights are random (speed only). Each number is the median of ``--repeats`` forward passes after
``--warmup`` on ``--threads`` CPU threads under ``torch.inference_mode``; the variants of a family are timed
call by call in turn, and ``speedup_vs_dense`` is the median of the per-round ratios, so a busy machine
shifts all of them alike. One JSON line per (family,
variant): ``{bench, family, variant, device, threads, batch, seq, params, ms, speedup_vs_dense}`` (``params``:
parameters of the float model, so int8 repeats the dense count); ALBERT's
shared layers refuse per-layer pruning, printed as ``{..., "skipped": reason}``.

    python bench/family_speed.py                 # hidden 256, 4 layers, 8 heads, FFN 1024; batch 8, seq 128
    python bench/family_speed.py --small         # tiny shapes, a smoke test
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys

import torch

from common import emit, time_call

SHAPE = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=8, intermediate_size=1024)
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
VOCAB = 1000


def family_model(family: str, shape: dict) -> torch.nn.Module:
    from pipeline.models.build import ArchParams, init_model

    arch = ArchParams(type=family, max_position_embeddings=512, **shape)
    return init_model(arch, "classification", VOCAB, 0).eval()


def variants(dense: torch.nn.Module) -> dict[str, torch.nn.Module | str]:
    """``{variant: model}``, or a reason string for a variant the family cannot make."""
    from pipeline.core.errors import PipelineError
    from pipeline.models.structure import heads_per_layer, intermediate_per_layer, prune_ffn_, prune_heads_
    from pipeline.quantize.dynamic_int8 import quantize_dynamic_int8

    out: dict[str, torch.nn.Module | str] = {"dense": dense}
    for name, sizes, prune in (("heads", heads_per_layer, prune_heads_), ("ffn", intermediate_per_layer, prune_ffn_)):
        model = copy.deepcopy(dense)
        try:
            prune(model, {i: list(range(n // 2)) for i, n in enumerate(sizes(model))})
            out[name] = model.eval()
        except PipelineError as err:
            out[name] = str(err)
    out["int8"] = quantize_dynamic_int8(dense)
    return out


def inputs(batch: int, seq: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(batch * 1000 + seq)
    return {"input_ids": torch.randint(5, VOCAB, (batch, seq), generator=g),
            "attention_mask": torch.ones(batch, seq, dtype=torch.long)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", action="store_true", help="tiny shapes and batch (a CPU smoke test)")
    p.add_argument("--families", default="", help="comma-separated model types (default: every adapter)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args(argv)
    from pipeline.models import families

    torch.set_num_threads(args.threads)
    shape, batch, seq = (SMALL, 2, 16) if args.small else (SHAPE, args.batch, args.seq)
    names = args.families.split(",") if args.families else families.FAMILIES.names()
    device = torch.device("cpu")
    for family in names:
        dense = family_model(family, shape)
        x = families.model_inputs(dense, inputs(batch, seq))
        models = variants(dense)
        times = interleaved({k: m for k, m in models.items() if not isinstance(m, str)}, x, args.warmup, args.repeats)
        for variant, model in models.items():
            record = {"bench": "family_speed", "family": family, "variant": variant, "device": "cpu",
                      "threads": args.threads, "batch": batch, "seq": seq}
            if isinstance(model, str):
                emit({**record, "skipped": model})
                continue
            ms = 1000 * statistics.median(times[variant])
            # int8 keeps the dense model's parameters (as int8 weights): count the float source's.
            params = sum(t.numel() for t in (dense if variant == "int8" else model).parameters())
            speedup = statistics.median(d / t for d, t in zip(times["dense"], times[variant]))
            emit({**record, "params": params, "ms": round(ms, 3), "speedup_vs_dense": round(speedup, 3)})
    return 0


@torch.inference_mode()
def interleaved(models: dict[str, torch.nn.Module], x: dict, warmup: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per call of every model, the variants timed one call each in turn (order reversed every
    round), so all of them see the same machine load; the speed-up is the median of per-round ratios."""
    device = torch.device("cpu")
    for model in models.values():
        time_call(lambda: model(**x), device, warmup, 0)
    times: dict[str, list[float]] = {name: [] for name in models}
    names = list(models)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            times[name] += time_call(lambda: models[name](**x), device, 0, 1)
    return times


if __name__ == "__main__":
    sys.exit(main())
