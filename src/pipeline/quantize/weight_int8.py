"""Scheme ``weight_int8``: group-wise asymmetric int8 weights with float16 scales (:mod:`.groupwise`)."""

from __future__ import annotations

from pipeline.quantize import Scheme, groupwise, register

register(Scheme(
    "weight_int8", groupwise.GroupParams,
    quantize=lambda model, params: groupwise.quantize_weights(model, 8, params),
    load=groupwise.load, float_state=groupwise.float_weights,
), __name__)
