"""Stage quantize: post-training quantization stored as SafeTensors, with its logit error measured.

Schemes (``quantize.scheme``): ``dynamic_int8`` (int8 weights + scales, CPU int8 kernels), ``weight_int8`` /
``weight_int4`` (group-wise weight-only), ``fp16`` / ``bf16`` (casts) and ``fp8`` (e4m3 weights).
"""

import argparse
import sys
from pathlib import Path

from pipeline import params
from pipeline.artifacts import META, atomic_dir, load_model, load_tokenizer, parents, save_model, write_json
from pipeline.errors import PipelineError, stage_main
from pipeline.evaluate import logit_error
from pipeline.features import batches, collate
from pipeline.quantize import int8_tensors, quantize_dynamic_int8
from pipeline.runtime import setup
from pipeline.tasks import rows, train_features
from pipeline.weight_quant import quantize_tensors


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", required=True, help="task name in params.yaml tasks")
    p.add_argument("source", type=Path, help="artifact to quantize")
    p.add_argument("data", type=Path, help="task data directory (validation inputs for the logit error)")
    p.add_argument("out", type=Path, help="output artifact directory")
    return p


def reads(args) -> list[str]:
    return [f"tasks.{args.task}", "quantize"]


@stage_main("quantize")
def main(argv=None):
    args = parser().parse_args(argv)
    task, cfg = params.load(*reads(args))
    setup(0)
    model, meta = load_model(args.source)
    if meta["format"] != "dense":
        raise PipelineError(f"{args.source}: already quantized ({meta['format']}); quantize a dense artifact")
    if cfg.scheme == "dynamic_int8":
        tensors, scheme = int8_tensors(quantize_dynamic_int8(model))
    else:
        tensors, scheme = quantize_tensors(model, cfg.scheme, cfg.group_size)
    tokenizer = load_tokenizer(args.source)
    feats = train_features(task, rows(task, args.data, "validation"), tokenizer)[: 32 * cfg.error_batches]
    data = list(batches(feats, 32, lambda f: collate(f, tokenizer.pad_token_id)))
    out_meta = {"stage": "quantize", "head": meta["head"], "format": cfg.scheme, "method": cfg.scheme,
                "task": meta.get("task"), "quantization": scheme, "parents": parents(args.source, args.data),
                "params": params.as_dict({"task": task, "quantize": cfg})}
    with atomic_dir(args.out) as tmp:
        save_model(tmp, model, args.source, out_meta, tensors=tensors)
        # Measured on the model rebuilt from the written files, exactly as later stages will load it.
        reloaded, _ = load_model(tmp)
        out_meta["results"] = logit_error(model, reloaded, data)
        write_json(tmp / META, out_meta)


if __name__ == "__main__":
    sys.exit(main())
