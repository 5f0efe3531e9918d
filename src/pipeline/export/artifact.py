"""ONNX artifacts: what may be exported, the example inputs, and the files next to ``model.onnx``.

An ONNX artifact is a directory with ``model.onnx`` (graph and weights), the ``config.json`` of the PyTorch
model it was exported from (pruned shapes included, for the model facts), its tokenizer files and
``pipeline.json`` (``format`` ``onnx`` or ``onnx_int8``, the exporter's description with the weight-name map,
the quantization settings, and ``results``: the logit error against the PyTorch source).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from pipeline.core.errors import PipelineError
from pipeline.core.files import write_json
from pipeline.core.finite import name_variant, variant_name
from pipeline.data.features import batches, collate
from pipeline.export.graph import OUTPUTS
from pipeline.export.onnx_int8 import check_int8_error
from pipeline.export.runtime import load
from pipeline.models.families import model_inputs
from pipeline.models.store import META, copy_tokenizer
from pipeline.quantize import logit_error, prunable_zeros
from pipeline.tasks.base import LABEL_KEYS, Task


def check_source(path: str | os.PathLike, meta: dict, head: str) -> dict:
    """``meta``, the ``pipeline.json`` of the artifact at ``path`` (read and checked by
    :func:`pipeline.artifacts.read_meta`), once it can be exported: checked before anything is loaded.

    Raises:
        PipelineError: a head other than ``head`` or one without graph outputs (``mlm``), or a format other
            than ``dense`` (a quantized or already exported artifact: the stage makes its int8 graph itself
            from float weights).
    """
    if meta.get("head") != head:
        raise PipelineError(f"{path}: holds a '{meta.get('head')}' model, expected '{head}'")
    if head not in OUTPUTS:
        raise PipelineError(f"{path}: a '{head}' model cannot be exported (heads: {', '.join(OUTPUTS)})")
    if meta.get("format") != "dense":
        raise PipelineError(f"{path}: format '{meta.get('format')}' cannot be exported; export a float (dense) "
                            "artifact (the stage quantizes the ONNX graph itself)")
    return meta


def example_inputs(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Model inputs for the exporter: the first two rows of a collated ``batch`` (its first row twice when it
    has one; torch.export fixes a dimension whose example size is 1), targets dropped, and only the inputs
    ``model`` takes (:func:`pipeline.models.families.model_inputs`: no segment ids for a model without
    segment embeddings), which the task code gives the graph too."""
    inputs = model_inputs(model, {k: v for k, v in batch.items() if k not in LABEL_KEYS})
    return {k: (v if v.shape[0] >= 2 else v.repeat(2, 1))[:2] for k, v in inputs.items()}


def validation_batches(task: Task, data_dir: str | os.PathLike, tokenizer,
                       count: int) -> list[dict[str, torch.Tensor]]:
    """The first ``count`` collated batches of 32 validation features (targets included, :meth:`Task.logits`
    drops them): the inputs both graphs are checked on, and the exporter's example."""
    feats = task.first_features(task.rows(data_dir, "validation"), tokenizer, 32 * count)
    if not feats:
        raise PipelineError(f"{Path(data_dir) / 'validation.jsonl'}: no rows to check the exported graphs on")
    return list(batches(feats, 32, lambda f: collate(f, tokenizer.pad_token_id)))


def source_summary(path: str | os.PathLike, meta: dict) -> dict:
    """What the exported artifact was: variant (directory name), stage, method, storage."""
    return {"variant": Path(path).name, "stage": meta.get("stage"), "method": meta.get("method", meta.get("stage")),
            "storage": meta.get("storage", "dense")}


def finish(out: Path, fmt: str, model: torch.nn.Module, task: Task, data: list[dict[str, torch.Tensor]],
           tokenizer_src: str | os.PathLike, meta: dict, quantization: dict | None = None) -> dict:
    """Complete the ONNX artifact whose ``model.onnx`` is in ``out`` and check it against the PyTorch model.

    Writes ``config.json`` (``model.config``: the source's architecture, pruned shapes included) and the
    tokenizer files, loads the graph as the evaluate stage will (:func:`pipeline.export.runtime.load`),
    measures its logit error against ``model`` on ``data`` (:func:`pipeline.quantize.logit_error`), and writes
    ``pipeline.json``: ``meta`` with ``format`` and ``method`` ``fmt``, ``quantization`` when given (with the
    zeros of ``model``'s prunable weights as ``source_zeros``, as the quantize stage records them:
    :func:`pipeline.quantize.prunable_zeros`), and ``results``.

    An int8 graph (``quantization`` with ``max_relative_error``) also records ``logit_max_abs_reference``
    (:func:`logit_scale`) and is refused when its error is too large for it
    (:func:`pipeline.export.onnx_int8.check_int8_error`).

    Returns:
        ``results``: ``logit_max_abs_error``, ``logit_mean_abs_error``, ``compared_logits`` (int8: and
        ``logit_max_abs_reference``).

    Raises:
        PipelineError: non-finite logits, or an int8 graph past its error bound.
    """
    if quantization:
        meta = {**meta, "quantization": {**quantization, "source_zeros": prunable_zeros(model)}}
    meta = {**meta, "format": fmt, "method": fmt}
    model.config.save_pretrained(out)
    copy_tokenizer(tokenizer_src, out)
    graph = name_variant(load(out, meta), f"{fmt} export of {variant_name(model)}")
    meta["results"] = logit_error(model, graph, data, task.logits)
    if quantization and "max_relative_error" in quantization:  # int8: refuse a saturated graph
        meta["results"]["logit_max_abs_reference"] = logit_scale(model, data, task.logits)
        check_int8_error(meta["results"], meta["quantization"], variant_name(graph))
    write_json(out / META, meta)
    return meta["results"]


@torch.inference_mode()
def logit_scale(model: torch.nn.Module, data: list[dict[str, torch.Tensor]], logits) -> float:
    """The largest |logit| of ``model`` on ``data`` (per-token QA logits on real tokens only, as
    :func:`pipeline.quantize.logit_error` compares them): the scale an int8 graph's error is judged against."""
    largest = 0.0
    for batch in data:
        mask = batch["attention_mask"].bool()
        for out in logits(model, batch):
            values = out.float().abs()
            values = values[mask] if values.shape == mask.shape else values
            largest = max(largest, float(values.max()))
    return largest


def export_metrics(task: str, source: str, described: dict, results: dict[str, dict]) -> dict:
    """The stage's flat metrics: exporter, opset, and per format ``<format>_logit_max_abs_error`` and
    ``<format>_logit_mean_abs_error`` (against the PyTorch source), ``compared_logits``."""
    out = {"task": task, "source": source, "exporter": described["exporter"], "opset": described["opset"]}
    for fmt, measured in results.items():
        out |= {f"{fmt}_logit_max_abs_error": measured["logit_max_abs_error"],
                f"{fmt}_logit_mean_abs_error": measured["logit_mean_abs_error"],
                "compared_logits": measured["compared_logits"]}
    return out
