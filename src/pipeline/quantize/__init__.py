"""Post-training quantization schemes, one module each, registered by name (``quantize.scheme``).

A :class:`~pipeline.models.formats.Scheme` knows how to turn a dense float model into the tensors stored in
``model.safetensors``, how to rebuild a runnable model from them, and how to give back the float weights they
stand for (for the model facts). The artifact's ``format`` in ``pipeline.json`` is the scheme's name, so loading a quantized
artifact imports exactly that scheme's module (:data:`SCHEMES`, :func:`pipeline.artifacts.load_model`). Schemes: ``dynamic_int8``, ``weight_int8``,
``weight_int4``, ``fp16``, ``bf16``, ``fp8``; a new one is a new module here plus its ``quantize.<name>``
section in ``params.yaml``.

Where a scheme is timed it runs its own kernel (:attr:`Scheme.kernel_for`, :attr:`Scheme.prepare`): on CUDA
through torchao's configs (the optional ``gpu`` extra, imported only there: :func:`torchao_quantization`), on
the CPU through torch's dynamic int8 Linears; a scheme without a kernel on a device says so in one line and is
evaluated there for accuracy and size only.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import torch

from pipeline.core.errors import PipelineError
from pipeline.core.finite import check_finite
from pipeline.core.registry import Registry
from pipeline.models import families
from pipeline.models.formats import Kernel, Prepared, Scheme, Tensors

SCHEMES: Registry[Scheme] = Registry("pipeline.quantize", "quantization scheme")
"""Every scheme by name (``quantize.schemes``, an artifact's ``format``), one per module of this package."""

GPU_EXTRA = "pip install 'bert-compress-pipeline[gpu]'"
"""How to get torchao, the library of the CUDA kernels (``[project.optional-dependencies] gpu``)."""


def register(entry: Scheme, module: str) -> Scheme:
    """Register a scheme; call from its own module as ``register(Scheme(...), __name__)``."""
    return SCHEMES.add(entry.name, entry, module)


def quantize_model(model: torch.nn.Module, name: str, params=None) -> tuple[Tensors, dict]:
    """The tensors to store for ``model`` under scheme ``name`` and the scheme's description (``params``: the
    scheme's knobs, None for its defaults); the model is not changed.

    The description also records ``source_zeros``: the zeros of each prunable weight of the float model
    (``{module path in the bare model: count}``), so the artifact's facts can tell pruned zeros from the zeros
    rounding adds (:func:`pipeline.evaluation.facts.source_zeros`).
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


# ---------------------------------------------------------------------------------------- kernels


def torchao_quantization():
    """``torchao.quantization`` (``quantize_`` and the configs), imported on first use.

    Raises:
        PipelineError: torchao is not installed (one line naming the ``gpu`` extra).
    """
    try:
        import torchao.quantization as quantization
    except ImportError as err:
        raise PipelineError(f"torchao is not installed ({err}): {GPU_EXTRA}, for the CUDA kernels of "
                            "the quantization schemes") from None
    return quantization


def cuda_kernel(device: torch.device, name: str, min_cc: tuple[int, int]) -> Kernel:
    """The torchao kernel ``name`` on ``device`` when it is a CUDA device of compute capability >= ``min_cc``
    and torchao is installed; else no kernel and the line saying which of the three is missing."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return Kernel(None, f"{name} runs on CUDA only, not on {device.type}: accuracy and size only")
    cc = torch.cuda.get_device_capability(device)
    if cc < min_cc:
        return Kernel(None, f"{name} needs compute capability >= {min_cc[0]}.{min_cc[1]}, "
                            f"this GPU has {cc[0]}.{cc[1]}: accuracy and size only")
    if importlib.util.find_spec("torchao") is None:
        return Kernel(None, f"torchao is not installed ({GPU_EXTRA}): accuracy and size only")
    return Kernel(name, f"CUDA compute capability {cc[0]}.{cc[1]}, torchao installed")


def linears(model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    """Every ``torch.nn.Linear`` of ``model`` by module path, in module order."""
    return {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}


@torch.no_grad()
def torchao_prepare(model: torch.nn.Module, device: torch.device, make_config: Callable,
                    fits: Callable[[torch.nn.Linear], bool], kernel: Kernel) -> Prepared:
    """``model`` in bfloat16 on ``device`` with a torchao config applied (``quantize_``, in place) to every
    Linear whose shape ``fits`` the kernel; the others stay bf16 Linears and are listed.

    Args:
        make_config: ``torchao.quantization -> config``, e.g. ``lambda q: q.Int8WeightOnlyConfig()``.
        kernel: the scheme's ``kernel_for(device)``.

    torchao quantizes the weights it is given: the stored values rebuilt by the scheme's ``load`` (float
    weights holding exactly the stored grid), so per-row schemes (fp8 rows, per-row int8) keep their values
    and group-wise ones are rounded once more onto torchao's grid (the logit error of that is the task
    metric's change, measured on the same model that is timed).

    Raises:
        PipelineError: ``kernel`` names none (the reason), or torchao is missing.
    """
    if kernel.name is None:
        raise PipelineError(kernel.reason)
    quantization = torchao_quantization()
    model = model.to(device=device, dtype=torch.bfloat16).eval()
    fast = {n for n, m in linears(model).items() if fits(m)}
    slow = [n for n in linears(model) if n not in fast]
    quantization.quantize_(model, make_config(quantization), filter_fn=lambda m, path: path in fast)
    return Prepared(model, kernel.name, len(fast), slow, "bfloat16", compile=True)


def multiple_of(n: int) -> Callable[[torch.nn.Linear], bool]:
    """A ``fits`` test: both dimensions of the Linear's weight are multiples of ``n`` (tensor-core GEMMs)."""
    return lambda m: m.in_features % n == 0 and m.out_features % n == 0


def with_kernels(result: tuple[Tensors, dict], kernels: dict[str, str | None]) -> tuple[Tensors, dict]:
    """A scheme's ``quantize`` result with ``kernels`` (``{device type: the config that runs it, or None}``)
    recorded in its description (``pipeline.json``'s ``quantization.kernels``)."""
    tensors, description = result
    return tensors, {**description, "kernels": kernels}
