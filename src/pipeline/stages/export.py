"""The export stage's work (``stages/export.py``): a float artifact exported to ONNX and quantized with ONNX
Runtime dynamic int8, both graphs checked against the PyTorch logits and written as artifacts."""

from __future__ import annotations

from pathlib import Path

from pipeline import tasks
from pipeline.config import loader
from pipeline.core.files import atomic_dir, parents, write_json
from pipeline.core.runtime import setup
from pipeline.data.tokenizer import load_tokenizer
from pipeline.export import GRAPH, GraphParams, Int8Params
from pipeline.export.artifact import (check_source, example_inputs, export_metrics, finish, source_summary,
                                      validation_batches)
from pipeline.export.onnx import export_onnx
from pipeline.export.onnx_int8 import quantize_onnx
from pipeline.artifacts import load_model, read_meta
from pipeline.quantize import LogitErrorParams


def export_stage(task_params: tasks.TaskParams, graph: GraphParams, int8: Int8Params, error: LogitErrorParams,
                 task_name: str, source: Path, data: Path, out: Path, out_int8: Path, metrics: Path) -> None:
    """Export the artifact ``source`` to ONNX (``out``) and its dynamic int8 version (``out_int8``).

    Args:
        task_name: the task's name (``tasks.<task_name>`` gave ``task_params``).
        data: the task's data directory: validation inputs for the logit errors.
        metrics: JSON file of both graphs' logit errors and sizes.

    Writes: the artifacts ``out`` (format ``onnx``) and ``out_int8`` (format ``onnx_int8``), both or neither,
    then ``metrics``.

    Raises:
        PipelineError: a source that cannot be exported (already quantized or exported, another head), data
        that does not fit the task, or a graph whose logits are off beyond ``export.logit_error``.
    """
    task = tasks.get(task_params)
    setup(0)
    summary = check_source(source, read_meta(source), task.head)
    model = load_model(source, task.head)[0]
    tokenizer = load_tokenizer(source)
    batches = validation_batches(task, data, tokenizer, error.batches)
    meta = {"stage": "export", "head": task.head, "task": summary.get("task"),
            "source": source_summary(source, summary), "parents": parents(source, data),
            "params": loader.as_dict({"task": task_params, "onnx": graph, "int8": int8, "logit_error": error})}
    with atomic_dir(out) as fp32_dir, atomic_dir(out_int8) as int8_dir:
        meta["onnx"] = export_onnx(model, example_inputs(model, batches[0]), task.head, fp32_dir, graph)
        quantization = quantize_onnx(fp32_dir / GRAPH, int8_dir / GRAPH, int8)
        results = {fmt: finish(where, fmt, model, task, batches, source, meta, q)
                   for fmt, where, q in (("onnx", fp32_dir, None), ("onnx_int8", int8_dir, quantization))}
    write_json(metrics, export_metrics(task_name, source.name, meta["onnx"], results))
