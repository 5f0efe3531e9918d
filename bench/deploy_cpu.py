"""CPU deployment options for one BERT-base-shaped classifier: PyTorch and ONNX Runtime, float32 and int8.

One randomly initialised BERT-base-sized sequence classifier (weights are random, so only speed is meaningful;
accuracy is the pipeline's job) is run as:

- ``torch_fp32``: PyTorch float32 (the baseline),
- ``torch_int8``: PyTorch dynamic int8 (``pipeline.quantize.dynamic_int8.quantize_dynamic_int8``),
- ``ort_fp32``: the ONNX graph of the export stage (``pipeline.export.onnx.export_onnx``, dynamo exporter) run by
  ONNX Runtime (``pipeline.export.runtime.OrtModel``),
- ``ort_int8``: that graph after ONNX Runtime dynamic int8 (``pipeline.export.onnx_int8.quantize_onnx``),
- ``heads_torch_int8`` and ``heads_ort_int8``: pruned to half the attention heads of every layer
  (``pipeline.models.structure.prune_heads_``, heads kept by index) and then quantized either way, the
  pruned + quantized combination of the pipeline's default (``quantize.source: distill-heads``).

All models are timed in one process on the same inputs (seq 128, random token ids, no padding), one call
each per round in round-robin order that reverses every other round
(``pipeline.evaluate.speed.interleaved``, as the evaluate stage does), with ``--threads`` threads for both
runtimes. ``speedup`` is the median over rounds of ``torch_fp32`` time / variant time within the round
(``pipeline.evaluate.speed.paired_speedup``), so load drift between rounds cancels. One JSON line per
(variant, batch): ``{bench, variant, runtime, precision, pruned, batch, seq, threads, rounds, p50_ms, p90_ms,
seq_per_s, speedup, logit_max_abs_error, loadavg_1m}``; ``logit_max_abs_error`` is against the variant's own
float32 PyTorch model (the dense one, or the pruned one for pruned variants), ``loadavg_1m`` the machine's
1-minute load average when the batch's timing ended (the machine may be shared).

    python bench/deploy_cpu.py                 # BERT-base, seq 128, batches 1 and 32
    python bench/deploy_cpu.py --small         # tiny config, CPU smoke test
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification

from common import emit

from pipeline.evaluate.speed import interleaved, paired_speedup, summarize
from pipeline.export import GraphParams, Int8Params
from pipeline.export.onnx import export_onnx
from pipeline.export.onnx_int8 import quantize_onnx
from pipeline.export.runtime import OrtModel
from pipeline.models.structure import prune_heads_
from pipeline.quantize.dynamic_int8 import quantize_dynamic_int8

BERT_BASE = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072)
SMALL = dict(vocab_size=1000, hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=256)
# variant -> (runtime, precision, pruned)
KINDS = {"torch_fp32": ("torch", "fp32", False), "torch_int8": ("torch", "int8", False),
         "ort_fp32": ("onnxruntime", "fp32", False), "ort_int8": ("onnxruntime", "int8", False),
         "heads_torch_int8": ("torch", "int8", True), "heads_ort_int8": ("onnxruntime", "int8", True)}


def token_batch(batch: int, seq: int, vocab: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(batch * 1000 + seq)
    ids = torch.randint(5, vocab, (batch, seq), generator=g)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}


def onnx_pair(model: torch.nn.Module, example: dict, root: Path, name: str) -> tuple[OrtModel, OrtModel]:
    """ONNX Runtime float32 and int8 versions of ``model``, exported under ``root/name``."""
    fp32, int8 = root / name / "fp32", root / name / "int8"
    fp32.mkdir(parents=True), int8.mkdir(parents=True)
    export_onnx(model, example, "classification", fp32, GraphParams())
    quantize_onnx(fp32 / "model.onnx", int8 / "model.onnx", Int8Params())
    # the config: the task code reads the model's family from it (which inputs it takes)
    return tuple(OrtModel(d / "model.onnx", "classification", model.config) for d in (fp32, int8))


def build(config: dict, root: Path, seq: int) -> tuple[dict[str, torch.nn.Module], dict[str, torch.nn.Module]]:
    """``(variants, float reference of each)``; logs progress on stderr (exports take minutes at full size)."""
    torch.manual_seed(0)
    dense = BertForSequenceClassification(BertConfig(**config, num_labels=2)).eval()
    heads = copy.deepcopy(dense)
    keep = config["num_attention_heads"] // 2
    prune_heads_(heads, {i: list(range(keep)) for i in range(config["num_hidden_layers"])})
    example = token_batch(2, min(seq, 16), config["vocab_size"])
    print("deploy_cpu: exporting and quantizing", file=sys.stderr, flush=True)
    ort_fp32, ort_int8 = onnx_pair(dense, example, root, "dense")
    _, heads_ort_int8 = onnx_pair(heads, example, root, "heads")
    models = {"torch_fp32": dense, "torch_int8": quantize_dynamic_int8(dense), "ort_fp32": ort_fp32,
              "ort_int8": ort_int8, "heads_torch_int8": quantize_dynamic_int8(heads), "heads_ort_int8": heads_ort_int8}
    return models, {name: heads if KINDS[name][2] else dense for name in models}


@torch.inference_mode()
def logit_errors(models: dict, references: dict, inputs: dict) -> dict[str, float]:
    out = {}
    for name, model in models.items():
        out[name] = float((model(**inputs).logits - references[name](**inputs).logits).abs().max())
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", action="store_true", help="tiny config, seq 32, batches 1 and 8 (CPU smoke test)")
    p.add_argument("--seq", type=int, default=None, help="tokens per sequence (default 128; 32 with --small)")
    p.add_argument("--batches", type=int, nargs="+", default=None, help="default: 1 32 (1 8 with --small)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls per model and batch (default 1)")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5; 3 with --small)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads of both runtimes (default 1)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = SMALL if args.small else BERT_BASE
    seq = args.seq or (32 if args.small else 128)
    repeats = args.repeats or (3 if args.small else 5)
    with tempfile.TemporaryDirectory() as tmp:
        models, references = build(config, Path(tmp), seq)
        for batch in args.batches or ([1, 8] if args.small else [1, 32]):
            inputs = token_batch(batch, seq, config["vocab_size"])
            errors = logit_errors(models, references, inputs)
            print(f"deploy_cpu: timing batch {batch}", file=sys.stderr, flush=True)
            times = interleaved(models, inputs, args.warmup, repeats)
            load = os.getloadavg()[0]
            for name, runtime_precision_pruned in KINDS.items():
                runtime, precision, pruned = runtime_precision_pruned
                emit({"bench": "deploy_cpu", "variant": name, "runtime": runtime, "precision": precision,
                      "pruned": f"heads {config['num_attention_heads'] // 2}/{config['num_attention_heads']}"
                      if pruned else "none", "batch": batch, "seq": seq, "threads": args.threads,
                      "rounds": repeats, "model": "small" if args.small else "bert-base",
                      **{k: round(v, 3) for k, v in summarize(times[name], batch).items()},
                      "speedup": round(paired_speedup(times[name], times["torch_fp32"]), 3),
                      "logit_max_abs_error": errors[name], "loadavg_1m": round(load, 2)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
