"""GPU inference paths: 2:4 semi-structured sparse Linears and fp8 (e4m3) Linears.

These turn a model that the pipeline has already compressed into one that runs on a GPU's special
kernels. Both are serving-time transformations (nothing here is saved to an artifact):

- :func:`to_semi_structured_`: Linear weights that carry a 2:4 pattern (``prune.nm``) become
  ``torch.sparse.to_sparse_semi_structured`` tensors (sparse tensor cores, CUDA compute capability >= 8.0).
  Measured on an H100 (see DESIGN.md) these GEMMs were *slower* than dense bf16 at BERT-base shapes, so
  this is an option to benchmark, not a default.
- :func:`to_fp8_`: Linears become :class:`Fp8Linear`: float8_e4m3fn weights with one float32 scale per
  output row (the format ``quantize.scheme: fp8`` stores, :mod:`pipeline.quantize.fp8`) and activations
  quantized per token at run time, multiplied by ``torch._scaled_mm`` (CUDA compute capability >= 8.9).

No silent fallback: a Linear whose dimensions ``_scaled_mm`` refuses (not multiples of 16, e.g. a 2-class
classifier) is never converted (:func:`fp8_fits`; :func:`plain_linears` lists what stayed a plain matmul), and
an :class:`Fp8Linear` on a CUDA GPU below compute capability 8.9 raises. On a CPU it computes the same quantized
values as a float32 matmul: reference numbers for tests, never a speed. The evaluate stage runs fp8 artifacts
through torchao's row-wise config instead (:mod:`pipeline.quantize.fp8`). The 2:4 conversion has no fallback
either; :func:`semi_structured_backend` says which sparse GEMM library runs it (cuSPARSELt or CUTLASS).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from pipeline.core.errors import PipelineError

FilterFn = Callable[[torch.nn.Module, str], bool]
FP8_MAX = 448.0  # largest finite float8_e4m3fn value, as the stored fp8 format uses
FP8_DTYPE = getattr(torch, "float8_e4m3fn", None)
SEMI_STRUCTURED_MIN_CC = (8, 0)  # Ampere: sparse tensor cores
FP8_MIN_CC = (8, 9)  # Ada / Hopper: fp8 tensor cores


def cuda_capability(device: torch.device | str | None = None) -> tuple[int, int] | None:
    """Compute capability ``(major, minor)`` of a CUDA device, or None without CUDA."""
    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_capability(device)


def require_capability(minimum: tuple[int, int], what: str) -> None:
    """Raise a :class:`PipelineError` naming ``what`` unless a CUDA GPU of at least ``minimum`` is present."""
    found = cuda_capability()
    if found is None or found < minimum:
        have = "no CUDA device" if found is None else f"compute capability {found[0]}.{found[1]}"
        raise PipelineError(f"{what} needs a CUDA GPU with compute capability >= {minimum[0]}.{minimum[1]} ({have})")


# ------------------------------------------------------------------------------------------------ 2:4


def is_2to4(weight: torch.Tensor) -> bool:
    """Whether every group of 4 consecutive weights along the input dimension has at most 2 non-zeros.

    Args:
        weight: ``(out, in)``; ``in`` must be a multiple of 4, else the answer is False.
    """
    rows, cols = weight.shape
    if cols % 4:
        return False
    return bool(((weight.reshape(rows, cols // 4, 4) != 0).sum(-1) <= 2).all())


def _semi_structured_ok(module: torch.nn.Module, name: str) -> bool:
    """Default filter: a half/bf16 Linear with a 2:4 pattern and shapes the sparse kernels accept.

    The CUTLASS/cuSPARSELt kernels want both weight dimensions to be multiples of 64 (16-bit types);
    BERT's classifier (2 outputs) and other odd shapes stay dense.
    """
    if not isinstance(module, torch.nn.Linear):
        return False
    w = module.weight
    return (w.dtype in (torch.float16, torch.bfloat16) and w.shape[0] % 64 == 0 and w.shape[1] % 64 == 0
            and is_2to4(w))


def semi_structured_backend() -> str:
    """``cuSPARSELt`` when torch was built with it and is not forced onto CUTLASS
    (``SparseSemiStructuredTensor._FORCE_CUTLASS``), else ``CUTLASS``: the library the 2:4 GEMMs run in."""
    from torch.sparse import SparseSemiStructuredTensor

    if torch.backends.cusparselt.is_available() and not SparseSemiStructuredTensor._FORCE_CUTLASS:
        return "cuSPARSELt"
    return "CUTLASS"


def plain_linears(model: torch.nn.Module) -> list[str]:
    """Module paths of the ``torch.nn.Linear`` layers still running a plain dense matmul (not converted by
    :func:`to_fp8_` nor given a semi-structured weight by :func:`to_semi_structured_`)."""
    from torch.sparse import SparseSemiStructuredTensor

    return [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)
            and not isinstance(m.weight, SparseSemiStructuredTensor)]


@torch.no_grad()
def to_semi_structured_(model: torch.nn.Module, filter_fn: FilterFn | None = None) -> list[str]:
    """Replace 2:4-sparse Linear weights by semi-structured sparse tensors, in place (inference only).

    Args:
        model: on a CUDA device, in float16 or bfloat16 (``model.cuda().to(torch.bfloat16)`` first).
        filter_fn: ``(module, path) -> bool``, which modules to convert; defaults to every Linear whose
            weight has a 2:4 pattern and dimensions that are multiples of 64. A module the filter picks
            that has no valid 2:4 pattern is an error (the conversion would silently drop weights).

    Returns:
        The module paths converted.

    Raises:
        PipelineError: no CUDA GPU of compute capability >= 8.0, or a picked weight that is not 2:4.
    """
    require_capability(SEMI_STRUCTURED_MIN_CC, "2:4 semi-structured sparsity")
    from torch.sparse import to_sparse_semi_structured

    filter_fn = filter_fn or _semi_structured_ok
    done = []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or not filter_fn(module, name):
            continue
        if not is_2to4(module.weight):
            raise PipelineError(f"{name}: weight has no 2:4 pattern (prune it with prune.nm first)")
        module.weight = torch.nn.Parameter(to_sparse_semi_structured(module.weight.detach()), requires_grad=False)
        done.append(name)
    return done


# ------------------------------------------------------------------------------------------------ fp8


def fp8_fits(module: torch.nn.Module) -> bool:
    """Whether ``_scaled_mm`` takes this Linear: both dimensions multiples of 16."""
    return isinstance(module, torch.nn.Linear) and module.in_features % 16 == 0 and module.out_features % 16 == 0


def _need_fp8_dtype() -> None:
    if FP8_DTYPE is None:
        raise PipelineError("this torch has no float8_e4m3fn dtype")


def quantize_fp8_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric e4m3 quantization with one scale per row: ``x ~ q * scale``.

    The scale maps each row's largest magnitude to 448 (the largest finite e4m3 value); an all-zero row
    gets a tiny scale instead of 0 (no division by zero). Used for weights (rows = output features, the
    ``quantize.scheme: fp8`` storage format) and for activations (rows = tokens).

    Args:
        x: ``(rows, cols)`` float tensor.

    Returns:
        ``(q, scale)``: ``q`` float8_e4m3fn ``(rows, cols)``, ``scale`` float32 ``(rows,)``.
    """
    _need_fp8_dtype()
    x = x.float()
    scale = (x.abs().amax(-1, keepdim=True) / FP8_MAX).clamp(min=1e-12)
    # clamp: x / scale can exceed 448 by one rounding step, and e4m3fn has no inf (it would become NaN)
    q = (x / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE)
    return q, scale.squeeze(-1)


def dequantize_fp8_rows(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Float32 ``q * scale[:, None]``: the inverse of :func:`quantize_fp8_rows`. Shapes ``(r, c)``, ``(r,)``."""
    return q.float() * scale.float().unsqueeze(-1)


class Fp8Linear(torch.nn.Module):
    """A Linear with e4m3 weights (per-output-row scales) and per-token dynamic e4m3 activations.

    ``y = (q_x @ q_w.T) * s_x[:, None] * s_w[None, :] + bias``, computed by ``torch._scaled_mm`` with
    float32 accumulation on CUDA with compute capability >= 8.9 (output in bfloat16); an older GPU raises; on
    a CPU the same quantized values are multiplied in float32 (reference numbers, never a speed). Both
    dimensions must be multiples of 16 (:func:`fp8_fits`).

    Buffers: ``weight_fp8`` ``(out, in)`` float8_e4m3fn, ``weight_scale`` ``(out,)`` float32, ``bias``
    ``(out,)`` or None; the same names and format as ``quantize.scheme: fp8`` artifacts.
    """

    def __init__(self, weight_fp8: torch.Tensor, weight_scale: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        _need_fp8_dtype()
        if weight_fp8.dtype != FP8_DTYPE or weight_fp8.ndim != 2:
            raise PipelineError(f"Fp8Linear: weight must be a 2-D float8_e4m3fn tensor, got {weight_fp8.dtype}")
        if weight_fp8.shape[0] % 16 or weight_fp8.shape[1] % 16:
            raise PipelineError(f"Fp8Linear: weight {tuple(weight_fp8.shape)} has a dimension that is no multiple of "
                                "16 (_scaled_mm refuses it): leave this Linear out")
        if weight_scale.shape != weight_fp8.shape[:1]:
            raise PipelineError(f"Fp8Linear: weight_scale {tuple(weight_scale.shape)} must be ({weight_fp8.shape[0]},)")
        self.out_features, self.in_features = weight_fp8.shape
        self.register_buffer("weight_fp8", weight_fp8.contiguous())
        self.register_buffer("weight_scale", weight_scale.float().contiguous())
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    @classmethod
    def from_linear(cls, linear: torch.nn.Linear) -> "Fp8Linear":
        """Quantize a float Linear's weight per output row (its bias stays in its dtype)."""
        q, scale = quantize_fp8_rows(linear.weight.detach())
        return cls(q, scale, linear.bias)

    def _fast(self, x: torch.Tensor) -> bool:
        """True on a CUDA GPU with fp8 tensor cores; False on a CPU (reference path); raises on an older GPU."""
        if not x.is_cuda:
            return False
        cc = cuda_capability(x.device)
        if cc < FP8_MIN_CC:
            raise PipelineError(f"Fp8Linear needs compute capability >= 8.9, this GPU has {cc[0]}.{cc[1]}")
        return True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(..., in)`` -> ``(..., out)`` in ``x``'s dtype."""
        shape = x.shape
        x2 = x.reshape(-1, self.in_features)
        qx, sx = quantize_fp8_rows(x2)
        if self._fast(x):
            y = torch._scaled_mm(qx, self.weight_fp8.t(), scale_a=sx.unsqueeze(1),
                                 scale_b=self.weight_scale.unsqueeze(0), out_dtype=torch.bfloat16)
        else:
            y = dequantize_fp8_rows(qx, sx) @ dequantize_fp8_rows(self.weight_fp8, self.weight_scale).t()
        if self.bias is not None:
            y = y + self.bias.to(y.dtype)
        return y.to(x.dtype).reshape(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, e4m3 weights+activations"


def _linear_filter(module: torch.nn.Module, name: str) -> bool:
    return isinstance(module, torch.nn.Linear)


@torch.no_grad()
def to_fp8_(model: torch.nn.Module, filter_fn: FilterFn | None = None) -> list[str]:
    """Swap Linear layers for :class:`Fp8Linear`, in place (inference only).

    Args:
        model: any float model; each new layer lives on its Linear's device.
        filter_fn: ``(module, path) -> bool``; defaults to every ``torch.nn.Linear``. A Linear it picks
            whose shape ``_scaled_mm`` refuses (:func:`fp8_fits`) is left as it is.

    Returns:
        The module paths swapped; :func:`plain_linears` gives the ones left (record them beside any timing).
    """
    filter_fn = filter_fn or _linear_filter
    picked = [(name, m) for name, m in model.named_modules()
              if isinstance(m, torch.nn.Linear) and name and filter_fn(m, name) and fp8_fits(m)]
    for name, linear in picked:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, Fp8Linear.from_linear(linear).to(linear.weight.device))
    return [name for name, _ in picked]
