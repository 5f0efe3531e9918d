"""Scheme ``bf16``: the whole model stored and run in bfloat16 (slow on CPUs without bf16 units)."""

from __future__ import annotations

import torch

from pipeline.quantize import register
from pipeline.quantize.casts import cast_scheme

register(cast_scheme("bf16", torch.bfloat16), __name__)
