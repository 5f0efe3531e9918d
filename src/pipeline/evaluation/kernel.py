"""Which kernel runs a variant where it is timed, and the variant made ready to run it (issue 23).

Every format names its kernel per device: a quantization scheme through its ``kernel_for``/``prepare``
(:class:`pipeline.models.formats.Scheme`: torchao on CUDA, torch's dynamic int8 on the CPU), a runtime format
its runtime (ONNX Runtime), dense weights torch's own GEMMs. Where a format has no kernel on the device that
would time it, the variant is still scored (accuracy, size) there, its speed fields are null and the one
line saying why is printed and recorded (``kernel_reason``): a dequantized model is never timed under a
quantized label.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline.artifacts import artifact_scheme, runtime_of
from pipeline.evaluation.speed import Inputs, absent_speed, run_device, speed_facts
from pipeline.models.formats import Kernel, Prepared
from pipeline.tasks.base import Task

CPU = torch.device("cpu")


@dataclass(frozen=True)
class Plan:
    """Where a variant runs in this run (task metrics and timing) and the kernel that runs it there."""

    where: torch.device
    kernel: Kernel
    cpu_too: bool = False
    """Whether the same model may also be timed on the CPU (``evaluate.cpu_timing``): dense weights only; a
    kernel found on a GPU does not run on the CPU."""


def dense_kernel(device: torch.device) -> Kernel:
    """Dense float weights: torch's float32 GEMMs on the CPU, cuBLAS under bf16 autocast on CUDA."""
    if device.type == "cuda":
        return Kernel("torch cuBLAS (bf16 autocast)", "dense weights")
    return Kernel(f"torch {device.type} float32", "dense weights")


def kernel_plan(root: str | Path, meta: dict, device: torch.device) -> Plan:
    """Where the artifact at ``root`` (``meta``: its ``pipeline.json``) runs and which kernel runs it.

    The run's ``device`` when the format has a kernel there; else the CPU when it has one there (a CPU-only
    kernel on a GPU server: torch dynamic int8 without torchao, ONNX Runtime); else the device its loaded model
    runs on (:func:`pipeline.evaluation.speed.run_device`), with no kernel: accuracy and size only.
    """
    if (found := runtime_of(meta)) is not None:
        where = run_device(device, found.devices)
        return Plan(where, Kernel(found.kernel, f"{meta['format']} graph"))
    if meta["format"] == "dense":
        return Plan(device, dense_kernel(device), cpu_too=True)
    scheme = artifact_scheme(Path(root), meta)
    here = scheme.kernel_for(device)
    if here.name is not None:
        return Plan(device, here)
    if device.type != "cpu" and (on_cpu := scheme.kernel_for(CPU)).name is not None:
        return Plan(CPU, on_cpu)
    where = run_device(device, scheme.devices)
    return Plan(where, here if where == device else scheme.kernel_for(where))


def _linears(model: torch.nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]


def _dtype(model: torch.nn.Module) -> str:
    """The dtype of the model's first floating-point parameter (``float32`` for a graph without any)."""
    first = next((p for p in model.parameters() if p.is_floating_point()), None)
    return str(first.dtype if first is not None else torch.float32).removeprefix("torch.")


@torch.inference_mode()
def compiled(model: torch.nn.Module, example: Callable[[], Inputs]) -> tuple[torch.nn.Module, float]:
    """``torch.compile(model)`` and the seconds its first call on ``example()`` took (the compilation)."""
    fast = torch.compile(model)
    inputs = {k: v.to(next(model.parameters()).device) for k, v in example().items()}
    start = time.perf_counter()
    Task.logits(fast, inputs)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return fast, time.perf_counter() - start


def fast_model(model: torch.nn.Module, root: str | Path, meta: dict, device: torch.device,
               example: Callable[[], Inputs]) -> tuple[Plan, torch.nn.Module, dict]:
    """The loaded ``model`` made ready to run its kernel where it runs (:func:`kernel_plan` on the run's
    ``device``), and what ran.

    Args:
        example: ``() -> inputs`` of a batch, for the compilation when the kernel needs one.

    Returns:
        ``(plan, model, facts)``: the plan, the model on ``plan.where`` (converted by the scheme's ``prepare``,
        compiled when the kernel needs it) and flat facts ``kernel`` (None: no kernel there), ``kernel_reason``,
        ``fast_linears`` (Linears that run the kernel; null for a graph), ``slow_linears`` (the others,
        their paths in ``slow_linear_paths`` when any), ``dtype`` and ``compile_s`` (null: not compiled).
    """
    plan = kernel_plan(root, meta, device)
    kernel, where = plan.kernel, plan.where
    if kernel.name is None:
        print(f"evaluate: {Path(root).name}: no kernel on {where.type}: {kernel.reason}", file=sys.stderr)
        model = model.to(where)
        prepared = Prepared(model, None, 0, _linears(model), _dtype(model))
    elif meta["format"] == "dense" or runtime_of(meta) is not None:
        model = model.to(where)
        fast = _linears(model) if meta["format"] == "dense" else None
        prepared = Prepared(model, kernel.name, None if fast is None else len(fast), [], _dtype(model))
    else:
        prepared = artifact_scheme(Path(root), meta).prepare(model, where, meta["quantization"])
    compile_s = None
    if prepared.compile:
        prepared.model, compile_s = compiled(prepared.model, example)
    facts = {"kernel": prepared.kernel, "kernel_reason": kernel.reason, "fast_linears": prepared.fast_linears,
             "slow_linears": len(prepared.slow_linears), "dtype": prepared.dtype, "compile_s": compile_s}
    if prepared.slow_linears and kernel.name is not None:
        facts["slow_linear_paths"] = ",".join(prepared.slow_linears)
    return plan, prepared.model, facts


def timed(variant: torch.nn.Module, baseline: torch.nn.Module, plan: Plan, make_inputs: Callable[[int], Inputs],
          cfg) -> dict:
    """:func:`pipeline.evaluation.speed.speed_facts` on ``plan.where`` when a kernel runs the variant there;
    else the same keys with the timings null (:func:`pipeline.evaluation.speed.absent_speed`). A kernel found
    off the CPU is not timed on the CPU too (``evaluate.cpu_timing``): it would not run there."""
    if plan.kernel.name is None:
        return absent_speed(plan.where, cfg)
    return speed_facts(variant, baseline, plan.where, make_inputs, cfg, cpu_too=plan.cpu_too)
