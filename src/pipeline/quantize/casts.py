"""Low-precision casts shared by the ``fp16`` and ``bf16`` schemes: every floating-point tensor is stored and
run in the cast dtype.

Kernel: torch's own GEMMs in that dtype: cuBLAS on CUDA; oneDNN on a CPU with native units for the dtype
(AVX512-BF16/AMX, AVX512-FP16). Elsewhere a CPU converts each tile to float32 (bf16 measured ~5x slower than
fp32 here, DESIGN.md): no kernel of the dtype's own, so accuracy and size only.
"""

from __future__ import annotations

import torch

from pipeline.models.build import load_state_
from pipeline.core.errors import PipelineError
from pipeline.quantize import NoParams, linears
from pipeline.models.formats import Kernel, Prepared, Scheme, Tensors
from pipeline.quantize.groupwise import state_without_tied

# Whether this CPU's oneDNN runs the dtype natively (torch's own checks of the CPU's instruction set).
CPU_NATIVE = {torch.bfloat16: lambda: torch.ops.mkldnn._is_mkldnn_bf16_supported(),
              torch.float16: lambda: torch.ops.mkldnn._is_mkldnn_fp16_supported()}


def cast_kernel(dtype: torch.dtype, device: torch.device) -> Kernel:
    """torch's ``dtype`` GEMMs on CUDA, or on a CPU whose oneDNN runs ``dtype`` natively; none on other CPUs."""
    name = str(dtype).removeprefix("torch.")
    if device.type == "cuda":
        return Kernel(f"torch {name} cuBLAS", f"the model runs in {name} (no autocast)")
    if device.type == "cpu" and CPU_NATIVE[dtype]():
        return Kernel(f"torch {name} oneDNN (CPU)", f"this CPU has native {name} units")
    return Kernel(None, f"{name} has no fast kernel on this {device.type} (no native {name} units: it converts to "
                        "float32 tile by tile): accuracy and size only")


def cast_scheme(name: str, dtype: torch.dtype) -> Scheme:
    """The scheme that stores and runs the whole model in ``dtype``."""

    def quantize(model: torch.nn.Module, params: NoParams) -> tuple[Tensors, dict]:
        tensors = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous()
                   for k, v in state_without_tied(model).items()}
        return tensors, {"scheme": name, "dtype": str(dtype).removeprefix("torch."),
                         "note": "every floating-point tensor stored in this dtype; loaded in it"}

    def load(model: torch.nn.Module, tensors: Tensors, scheme: dict, source: str) -> torch.nn.Module:
        model.to(dtype)
        load_state_(model, tensors, source)
        return model

    def prepare(model: torch.nn.Module, device: torch.device, description: dict) -> Prepared:
        kernel = cast_kernel(dtype, device)
        if kernel.name is None:
            raise PipelineError(kernel.reason)
        model = model.to(device).eval()
        return Prepared(model, kernel.name, len(linears(model)), [], str(dtype).removeprefix("torch."))

    return Scheme(name, NoParams, quantize=quantize, load=load, float_state=lambda t, scheme, source: dict(t),
                  kernel_for=lambda device: cast_kernel(dtype, device), prepare=prepare)
