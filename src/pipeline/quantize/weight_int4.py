"""Scheme ``weight_int4``: group-wise asymmetric int4 weights (two per byte) with float16 scales
(:mod:`.groupwise`)."""

from __future__ import annotations

from pipeline.quantize import Scheme, groupwise, register

register(Scheme(
    "weight_int4", groupwise.GroupParams,
    quantize=lambda model, params: groupwise.quantize_weights(model, 4, params),
    load=groupwise.load, float_state=groupwise.float_weights,
), __name__)
