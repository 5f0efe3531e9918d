"""Format ``onnx_int8``: ONNX Runtime dynamic int8 quantization of an ``onnx`` graph.

``onnxruntime.quantization.quantize_dynamic`` stores the weights of MatMul/Gemm operators (and the embedding
tables of Gather operators) as 8-bit integers with float scales; activations are quantized per tensor at run
time (uint8), and the matrix products run as ``MatMulInteger``. Measured on this CPU (AVX2, no VNNI) on the
real MiniLM (all-MiniLM-L6-v2) with a fresh classification head: max logit error 0.0074 per tensor and 0.0032
per channel against PyTorch float32, where ``torch.ao`` dynamic int8 gave 0.0117.

Without VNNI the u8s8 kernels can saturate (onnxruntime issue 6004; ``reduce_range`` in ONNX Runtime's
quantization docs): ``export.int8.reduce_range`` is ``true`` by default or chosen from the CPU (``auto``), and a
graph whose logit error is large against the logits' scale is refused (:func:`check_int8_error`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.core.errors import PipelineError
from pipeline.export import GRAPH, Int8Params, register
from pipeline.export.libraries import onnx, onnxruntime, ort_quantization
from pipeline.export.onnx import artifact_state
from pipeline.export.runtime import load
from pipeline.export.weights import QUANTIZED
from pipeline.models.formats import Runtime


CPUINFO = Path("/proc/cpuinfo")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni")
"""``/proc/cpuinfo`` flags of the int8 dot-product instructions that ONNX Runtime's u8s8 kernels use without
saturating (AVX-512 VNNI; AVX-VNNI on newer client and server cores)."""


def cpu_has_vnni(cpuinfo: Path | None = None) -> bool:
    """Whether this CPU lists a VNNI flag in ``cpuinfo`` (default :data:`CPUINFO`); False where it cannot be
    read (not Linux): the safe side."""
    try:
        flags = set((cpuinfo or CPUINFO).read_text().split())
    except OSError:
        return False
    return any(flag in flags for flag in VNNI_FLAGS)


def resolve_reduce_range(setting: bool | str, cpuinfo: Path | None = None) -> dict:
    """What ``export.int8.reduce_range`` means on this machine, as recorded in ``pipeline.json``:
    ``{"reduce_range": bool, "reduce_range_setting": setting}``, plus ``cpu_vnni`` for ``auto`` (``false``
    only where the CPU has VNNI)."""
    if setting != "auto":
        return {"reduce_range": bool(setting), "reduce_range_setting": setting}
    vnni = cpu_has_vnni(cpuinfo)
    return {"reduce_range": not vnni, "reduce_range_setting": "auto", "cpu_vnni": vnni}


def check_int8_error(results: dict, quantization: dict, variant: str) -> None:
    """Refuse an int8 graph whose largest logit error exceeds ``max_relative_error`` times the scale of its
    PyTorch source's logits: the largest |logit| (``results``: :func:`pipeline.quantize.logit_error` plus
    ``logit_max_abs_reference``), floored at 1. The floor keeps a head whose logits are all near 0 (an
    untrained or undecided classifier, measured: largest |logit| 0.007 on a tiny SST-2 run) from being
    refused for errors of 1e-3 that change no prediction; saturation errors (0.283 measured on a ModernBERT
    graph, against 0.021 with ``reduce_range``) stay well past 0.1.

    Raises:
        PipelineError: naming ``variant``, both numbers and ``export.int8.reduce_range``.
    """
    error, scale = results["logit_max_abs_error"], max(1.0, results["logit_max_abs_reference"])
    bound = quantization["max_relative_error"] * scale
    if error > bound:
        hint = ("set export.int8.reduce_range: true (7-bit weights avoid the u8s8 saturation of CPUs without VNNI)"
                if not quantization["reduce_range"] else "try export.int8.per_channel: true, or keep the float graph")
        raise PipelineError(
            f"{variant}: int8 logit error {error:.4g} exceeds {quantization['max_relative_error']:g} x the logits' "
            f"scale {scale:.4g} (the largest |logit|, at least 1; export.int8.max_relative_error) with export.int8.reduce_range "
            f"{quantization['reduce_range_setting']!s} (used: {quantization['reduce_range']}): {hint}")


def quantize_onnx(source: Path, out: Path, params: Int8Params) -> dict:
    """Write the dynamic int8 version of the float graph ``source`` to ``out``.

    Returns:
        the ``quantization`` entry of ``pipeline.json``: ``scheme`` (``onnx_int8``), the settings (the
        ``reduce_range`` used and its setting: :func:`resolve_reduce_range`), the error bound, the library
        version and ``quantized_weights`` (initializers stored as 8-bit integers).
    """
    reduce_range = resolve_reduce_range(params.reduce_range)
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # the tool suggests its pre-processing pass on every call
    try:
        ort_quantization.quantize_dynamic(source, out, per_channel=params.per_channel,
                                          reduce_range=reduce_range["reduce_range"],
                                          weight_type=ort_quantization.QuantType.QInt8)
    finally:
        logging.disable(previous)
    stored = onnx.load(str(out))
    quantized = sum(init.name.endswith(QUANTIZED) for init in stored.graph.initializer)
    # What the tool did with these settings (onnxruntime 1.32, checked on the stored zero points): MatMul/Gemm
    # weights int8 with zero point 0, embedding tables uint8 with a zero point, activations at run time.
    return {"scheme": "onnx_int8", "per_channel": params.per_channel, **reduce_range,
            "max_relative_error": params.max_relative_error, "weights": "MatMul/Gemm int8 symmetric; embedding tables uint8 with zero point",
            "activations": "uint8 per tensor, at run time", "library": f"onnxruntime {onnxruntime.__version__}",
            "quantized_weights": quantized}


register(Runtime("onnx_int8", weights=GRAPH, load=load, float_state=artifact_state,
                 kernel="onnxruntime CPUExecutionProvider int8"), __name__)
