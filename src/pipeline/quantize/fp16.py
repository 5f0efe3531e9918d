"""Scheme ``fp16``: the whole model stored and run in float16."""

from __future__ import annotations

import torch

from pipeline.quantize import register
from pipeline.quantize.casts import cast_scheme

register(cast_scheme("fp16", torch.float16), __name__)
