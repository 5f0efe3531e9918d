"""Post-training quantization schemes, one module each, registered by name (``quantize.scheme``).

A :class:`~pipeline.models.formats.Scheme` knows how to turn a dense float model into the tensors stored in
``model.safetensors``, how to rebuild a runnable model from them, and how to give back the float weights they
stand for (for the model facts). The artifact's ``format`` in ``pipeline.json`` is the scheme's name, so loading a quantized
artifact imports exactly that scheme's module (:func:`scheme`). Schemes: ``dynamic_int8``, ``weight_int8``,
``weight_int4``, ``fp16``, ``bf16``, ``fp8``; a new one is a new module here plus its ``quantize.<name>``
section in ``params.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from pipeline.core.finite import check_finite
from pipeline.models import families
from pipeline.models.formats import SCHEMES, Scheme, Tensors, scheme  # noqa: F401  (the registry lives there)


def register(entry: Scheme, module: str) -> Scheme:
    """Register a scheme; call from its own module as ``register(Scheme(...), __name__)``."""
    return SCHEMES.add(entry.name, entry, module)


def quantize_model(model: torch.nn.Module, name: str, params=None) -> tuple[Tensors, dict]:
    """The tensors to store for ``model`` under scheme ``name`` and the scheme's description (``params``: the
    scheme's knobs, None for its defaults); the model is not changed.

    The description also records ``source_zeros``: the zeros of each prunable weight of the float model
    (``{module path in the bare model: count}``), so the artifact's facts can tell pruned zeros from the zeros
    rounding adds (:func:`pipeline.evaluate.facts.source_zeros`).
    """
    entry = SCHEMES.get(name)
    zeros = prunable_zeros(model)
    tensors, description = entry.quantize(model, entry.params() if params is None else params)
    return tensors, {**description, "source_zeros": zeros}


def prunable_zeros(model: torch.nn.Module) -> dict[str, int]:
    """Zeros of each prunable weight of a float model, ``{module path in the bare model: count}``: what a
    quantized artifact records as its ``source_zeros`` (:func:`quantize_model`; the ONNX Runtime int8 graphs of
    :mod:`pipeline.export` too)."""
    return {k: int((m.weight == 0).sum()) for k, m in _prunable(model).items()}


def _prunable(model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    """The model family's prunable Linears; every Linear of a module that is no transformers model."""
    if hasattr(model, "config"):
        return families.of(model).prunable_linears(model)
    return {name: m for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)}


@dataclass
class LogitErrorParams:
    """How the quantized model's logits are compared with its source's (``quantize.logit_error``)."""

    batches: int = 4
    """Validation batches (of 32) compared."""

    def __post_init__(self):
        if self.batches < 1:
            raise ValueError("batches must be >= 1")


@torch.inference_mode()
def logit_error(reference: torch.nn.Module, other: torch.nn.Module, data: list[dict[str, torch.Tensor]],
                logits: Callable) -> dict:
    """How far ``other``'s task logits are from ``reference``'s on the same batches.

    Args:
        logits: ``(model, batch) -> tuple of logit tensors`` (the task's :meth:`pipeline.tasks.base.Task.logits`).

    Per-token QA logits are compared on real (non-padding) tokens only.

    Returns:
        ``{"logit_max_abs_error", "logit_mean_abs_error", "compared_logits"}``.

    Raises:
        PipelineError: either model's logits hold NaN or inf (:func:`pipeline.core.finite.check_finite`, naming
            that model and the likely cause, e.g. an fp16 cast's range).
    """
    diffs = []
    for batch in data:
        mask = batch["attention_mask"].bool()
        ref_logits, out_logits = logits(reference, batch), logits(other, batch)
        check_finite(ref_logits, reference)
        check_finite(out_logits, other)
        for ref, out in zip(ref_logits, out_logits):
            d = (ref.float() - out.float()).abs()
            diffs.append(d[mask] if d.shape == mask.shape else d.flatten())
    d = torch.cat(diffs)
    return {"logit_max_abs_error": float(d.max()), "logit_mean_abs_error": float(d.mean()),
            "compared_logits": d.numel()}


@dataclass
class NoParams:
    """A scheme without knobs (its ``quantize.<name>`` section is ``{}``)."""
