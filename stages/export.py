"""Stage export: a float artifact exported to ONNX and quantized with ONNX Runtime dynamic int8; both graphs are
checked against the PyTorch logits and written as artifacts the evaluate stage scores like any other."""

import argparse
import sys
from pathlib import Path

from pipeline import tasks
from pipeline.config import loader
from pipeline.core.errors import stage_main
from pipeline.core.files import atomic_dir, parents, write_json
from pipeline.core.runtime import setup
from pipeline.data.tokenizer import load_tokenizer
from pipeline.export import GRAPH, GraphParams, Int8Params
from pipeline.export.artifact import (check_source, example_inputs, export_metrics, finish, source_summary,
                                      validation_batches)
from pipeline.artifacts import load_model, read_meta
from pipeline.export.onnx import export_onnx
from pipeline.export.onnx_int8 import quantize_onnx
from pipeline.quantize import LogitErrorParams


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", required=True, help="task name in params.yaml tasks")
    p.add_argument("--metrics", type=Path, required=True, help="JSON of both graphs' logit errors and sizes")
    p.add_argument("source", type=Path, help="float artifact to export")
    p.add_argument("data", type=Path, help="task data directory (validation inputs for the logit error)")
    p.add_argument("out", type=Path, help="output artifact: the float32 graph (format onnx)")
    p.add_argument("out_int8", type=Path, help="output artifact: its dynamic int8 version (format onnx_int8)")
    return p


def reads(args) -> dict[str, type]:
    return {f"tasks.{args.task}": tasks.TaskParams, "export.onnx": GraphParams, "export.int8": Int8Params,
            "export.logit_error": LogitErrorParams}


@stage_main("export")
def main(argv=None):
    args = parser().parse_args(argv)
    task_params, graph, int8, error = loader.load(reads(args))
    task = tasks.get(task_params)
    setup(0)
    source = check_source(args.source, read_meta(args.source), task.head)
    model, tokenizer = load_model(args.source, task.head)[0], load_tokenizer(args.source)
    data = validation_batches(task, args.data, tokenizer, error.batches)
    meta = {"stage": "export", "head": task.head, "task": source.get("task"),
            "source": source_summary(args.source, source), "parents": parents(args.source, args.data),
            "params": loader.as_dict({"task": task_params, "onnx": graph, "int8": int8, "logit_error": error})}
    with atomic_dir(args.out) as fp32_dir, atomic_dir(args.out_int8) as int8_dir:
        meta["onnx"] = export_onnx(model, example_inputs(model, data[0]), task.head, fp32_dir, graph)
        quantization = quantize_onnx(fp32_dir / GRAPH, int8_dir / GRAPH, int8)
        results = {fmt: finish(out, fmt, model, task, data, args.source, meta, q)
                   for fmt, out, q in (("onnx", fp32_dir, None), ("onnx_int8", int8_dir, quantization))}
    write_json(args.metrics, export_metrics(args.task, args.source.name, meta["onnx"], results))


if __name__ == "__main__":
    sys.exit(main())
