"""Low-precision casts shared by the ``fp16`` and ``bf16`` schemes: every floating-point tensor is stored and
run in the cast dtype."""

from __future__ import annotations

import torch

from pipeline.models.build import load_state_
from pipeline.quantize import NoParams, Scheme, Tensors
from pipeline.quantize.groupwise import state_without_tied


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

    return Scheme(name, NoParams, quantize=quantize, load=load, float_state=lambda t, scheme, source: dict(t))
