"""Finite logits: a variant whose logits hold NaN or inf stops with one line naming it and the likely cause.

Non-finite logits otherwise surface far from their cause: strict JSON refuses a NaN logit error (quantize,
export), scikit-learn refuses NaN scores (evaluate), an argmax over NaN picks class 0 silently. The usual
causes are an fp16 model whose activations pass float16's largest value (65,504; bf16 has float32's exponent
range, as the mixed-precision literature and PyTorch's AMP notes say) and weights that training made NaN.

Every place that gathers logits calls :func:`check_finite`; an artifact loaded by
:func:`pipeline.artifacts.load_model` and a model being trained carry their name (:func:`name_variant`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from pipeline.core.errors import PipelineError

VARIANT_ATTR = "pipeline_variant"
"""The model attribute holding the variant's name (its artifact directory, or the training run)."""
FP16_MAX = float(torch.finfo(torch.float16).max)
"""65,504: the largest finite float16."""


def name_variant(model: torch.nn.Module, name: str) -> torch.nn.Module:
    """Record ``name`` (an artifact directory, ``finetune cls``) on ``model`` for messages; returns ``model``."""
    object.__setattr__(model, VARIANT_ATTR, str(name))
    return model


def variant_name(model: torch.nn.Module) -> str:
    """The name :func:`name_variant` recorded, else the model's class name."""
    return getattr(model, VARIANT_ATTR, None) or type(model).__name__


def likely_cause(model: torch.nn.Module) -> str:
    """The most likely reason for non-finite outputs of ``model``, with the setting that avoids it."""
    params = list(model.parameters()) if isinstance(model, torch.nn.Module) else []
    if any(not torch.isfinite(p).all() for p in params if p.is_floating_point()):
        return "its weights hold NaN or inf (training diverged: lower the learning rate, or rebuild its source)"
    if any(p.dtype == torch.float16 for p in params):
        return (f"fp16 range: an activation exceeds float16's largest value ({FP16_MAX:,.0f}); use bf16 "
                "(quantize.scheme: bf16 keeps float32's range)")
    if not params:  # a graph run by another runtime (ONNX): its weights are not visible here
        return ("the graph overflows (an fp16 or int8 graph's range; compare with its PyTorch source's logits, "
                "and use bf16 or export.int8.reduce_range: true)")
    return "an activation overflows float32 or divides by zero (check the source's training and the inputs)"


def check_finite(outputs: Iterable[torch.Tensor | np.ndarray], model: torch.nn.Module, what: str = "logits") -> None:
    """Refuse non-finite values among ``outputs`` (the logit tensors or arrays of one model, any shapes).

    Args:
        outputs: tensors or arrays gathered from ``model``.
        model: the model that produced them, named by :func:`variant_name` and diagnosed by :func:`likely_cause`.
        what: what the values are, for the message (``logits``, ``validation logits``).

    Raises:
        PipelineError: one line ``<variant>: <n> of <total> <what> are NaN or inf: <likely cause>``.
    """
    bad = total = 0
    for out in outputs:
        finite = torch.isfinite(out) if isinstance(out, torch.Tensor) else np.isfinite(out)
        bad += int((~finite).sum())
        total += int(finite.numel() if isinstance(finite, torch.Tensor) else finite.size)
    if bad:
        raise PipelineError(f"{variant_name(model)}: {bad} of {total} {what} are NaN or inf: {likely_cause(model)}")
