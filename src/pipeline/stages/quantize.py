"""The quantize stage's work (``stages/quantize.py``): one registered scheme applied to a dense artifact,
stored as SafeTensors, with the reloaded model's logit error measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline import tasks
from pipeline.config import loader
from pipeline.core.errors import PipelineError
from pipeline.core.files import atomic_dir, parents, write_json
from pipeline.core.finite import name_variant
from pipeline.core.runtime import setup
from pipeline.data.features import batches, collate
from pipeline.data.tokenizer import load_tokenizer
from pipeline.artifacts import load_model
from pipeline.models.store import META, save_model
from pipeline.quantize import SCHEMES, LogitErrorParams, logit_error, quantize_model


def quantize_stage(task_params: tasks.TaskParams, cfg: Any, error: LogitErrorParams, task_name: str,
                   scheme_name: str, source: Path, data: Path, out: Path) -> None:
    """Quantize the dense artifact ``source`` with the scheme ``scheme_name`` (its knobs ``cfg``); write ``out``.

    Args:
        task_name: the task's name (``tasks.<task_name>`` gave ``task_params``).
        data: the task's data directory: its first ``32 * error.batches`` validation examples give the logit
            error, in batches of 32.

    Writes: the artifact ``out`` (format ``scheme_name``; ``pipeline.json`` holds the scheme's description and,
    as ``results``, the logit error of the model rebuilt from the written files).

    Raises:
        PipelineError: an unknown scheme, a source that is already quantized, a model, tokenizer or data set
        that does not fit the task, or a quantized model with non-finite logits.
    """
    task = tasks.get(task_params)
    scheme = SCHEMES.get(scheme_name)
    setup(0)
    model, meta = load_model(source, task.head)
    tokenizer = load_tokenizer(source)
    if meta["format"] != "dense":
        raise PipelineError(f"{source}: already quantized ({meta['format']}); quantize a dense artifact")
    task.check(task_name, {source: model}, tokenizer, data, splits=("validation",))
    tensors, description = quantize_model(model, scheme.name, cfg)
    feats = task.first_features(task.rows(data, "validation"), tokenizer, 32 * error.batches)
    inputs = list(batches(feats, 32, lambda f: collate(f, tokenizer.pad_token_id)))
    out_meta = {"stage": "quantize", "head": meta["head"], "format": scheme.name, "method": scheme.name,
                "task": meta.get("task"), "quantization": description, "parents": parents(source, data),
                "params": loader.as_dict({"task": task_params, scheme.name: cfg, "logit_error": error})}
    with atomic_dir(out) as tmp:
        save_model(tmp, model, source, out_meta, tensors=tensors)
        # Measured on the model rebuilt from the written files, exactly as later stages will load it.
        out_meta["results"] = logit_error(model, name_variant(load_model(tmp)[0], out), inputs, task.logits)
        write_json(tmp / META, out_meta)
