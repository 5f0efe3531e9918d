"""Stage quantize: dynamic int8 quantization, stored as SafeTensors (int8 weights + scales)."""

import argparse
import sys
from pathlib import Path

from pipeline import params
from pipeline.artifacts import atomic_dir, load_model, parents, save_model
from pipeline.errors import PipelineError, stage_main
from pipeline.quantize import int8_tensors, quantize_dynamic_int8
from pipeline.runtime import setup


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("source", type=Path, help="artifact to quantize")
    p.add_argument("out", type=Path, help="output artifact directory")
    return p


def reads(args) -> list[str]:
    return ["quantize"]


@stage_main("quantize")
def main(argv=None):
    args = parser().parse_args(argv)
    (cfg,) = params.load(*reads(args))
    setup(0)
    model, meta = load_model(args.source)
    if meta["format"] != "dense":
        raise PipelineError(f"{args.source}: already quantized ({meta['format']}); quantize a dense artifact")
    tensors, scheme = int8_tensors(quantize_dynamic_int8(model))
    out_meta = {"stage": "quantize", "head": meta["head"], "format": cfg.scheme, "method": cfg.scheme,
                "task": meta.get("task"), "quantization": scheme, "parents": parents(args.source),
                "params": params.as_dict(cfg)}
    with atomic_dir(args.out) as tmp:
        save_model(tmp, model, args.source, out_meta, tensors=tensors)


if __name__ == "__main__":
    sys.exit(main())
