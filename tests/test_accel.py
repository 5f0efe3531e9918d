"""GPU inference paths (pipeline.models.accel): the pure parts on CPU, the kernels under the gpu marker."""

from __future__ import annotations

import pytest
import torch

from pipeline.models.accel import (
    FP8_MIN_CC,
    Fp8Linear,
    cuda_capability,
    dequantize_fp8_rows,
    is_2to4,
    plain_linears,
    quantize_fp8_rows,
    semi_structured_backend,
    to_fp8_,
    to_semi_structured_,
)
from pipeline.core.errors import PipelineError
from pipeline.prune.nm import nm_masks
from pipeline.quantize import quantize_model
from pipeline.quantize.fp8 import FP8_MAX


def test_fp8_round_trip_error_is_within_e4m3_rounding():
    torch.manual_seed(0)
    x = torch.randn(16, 64) * torch.logspace(-3, 2, 16).unsqueeze(1)  # rows of very different ranges
    q, scale = quantize_fp8_rows(x)
    assert q.dtype == torch.float8_e4m3fn and scale.shape == (16,)
    # each row's largest magnitude maps exactly onto the largest finite e4m3 value
    assert torch.equal(q.float().abs().amax(1), torch.full((16,), FP8_MAX))
    err = (dequantize_fp8_rows(q, scale) - x).abs()
    # e4m3 has 3 mantissa bits: half an ulp is 2^-4 relative for normals, 2^-10 absolute for subnormals
    bound = scale.unsqueeze(1) * torch.maximum((x / scale.unsqueeze(1)).abs() * 2**-4, torch.tensor(2**-10))
    assert bool((err <= bound * 1.0001 + 1e-12).all())
    assert err.max() > 0  # it does round


def test_fp8_zero_row_has_finite_scale():
    q, scale = quantize_fp8_rows(torch.zeros(2, 8))
    assert bool((scale > 0).all()) and not bool(q.float().isnan().any())
    assert torch.equal(dequantize_fp8_rows(q, scale), torch.zeros(2, 8))


def test_fp8_weights_match_the_stored_fp8_scheme():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8))
    stored, _ = quantize_model(model, "fp8")
    paths = to_fp8_(model)
    assert paths == ["0"] and plain_linears(model) == ["2"]  # 8 outputs: _scaled_mm refuses it, left and listed
    for path in paths:
        layer = model.get_submodule(path)
        assert isinstance(layer, Fp8Linear)
        assert torch.equal(layer.weight_fp8.view(torch.uint8), stored[f"{path}.weight_fp8"].view(torch.uint8))
        assert torch.equal(layer.weight_scale, stored[f"{path}.weight_scale"])


def test_fp8_linear_fallback_is_close_to_the_float_linear():
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    x = torch.randn(3, 5, 64)
    ref = linear(x)
    out = Fp8Linear.from_linear(linear)(x)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    rel = (out - ref).norm() / ref.norm()
    assert 0 < rel < 0.05, rel


def test_to_fp8_respects_the_filter():
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Linear(32, 16), torch.nn.Linear(16, 2))
    assert to_fp8_(model, lambda m, name: name != "1") == ["0"]  # "2" picked but unfit: left, never a fallback
    assert isinstance(model[0], Fp8Linear) and type(model[1]) is type(model[2]) is torch.nn.Linear
    assert plain_linears(model) == ["1", "2"]
    assert model(torch.randn(4, 16)).shape == (4, 2)


def test_fp8_linear_refuses_shapes_scaled_mm_refuses():
    with pytest.raises(PipelineError, match="no multiple of 16"):
        Fp8Linear.from_linear(torch.nn.Linear(32, 2))


def test_semi_structured_backend_names_the_library(monkeypatch):
    from torch.sparse import SparseSemiStructuredTensor

    monkeypatch.setattr(SparseSemiStructuredTensor, "_FORCE_CUTLASS", True)
    assert semi_structured_backend() == "CUTLASS"
    monkeypatch.setattr(SparseSemiStructuredTensor, "_FORCE_CUTLASS", False)
    expected = "cuSPARSELt" if torch.backends.cusparselt.is_available() else "CUTLASS"
    assert semi_structured_backend() == expected


def test_fp8_linear_rejects_a_float_weight():
    with pytest.raises(PipelineError, match="float8_e4m3fn"):
        Fp8Linear(torch.randn(4, 4), torch.ones(4))


def test_is_2to4_on_nm_masks_and_dense():
    torch.manual_seed(0)
    w = torch.randn(8, 16)
    assert not is_2to4(w)
    mask = nm_masks({"w": w}, 2, 4)["w"]
    assert is_2to4(w * mask)
    assert not is_2to4(torch.randn(4, 6))  # input dimension not a multiple of 4


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU error")
def test_semi_structured_without_cuda_is_a_clear_error():
    model = torch.nn.Sequential(torch.nn.Linear(64, 64))
    with pytest.raises(PipelineError, match="compute capability >= 8.0"):
        to_semi_structured_(model)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or cuda_capability() < (8, 0), reason="needs CUDA cc >= 8.0")
def test_semi_structured_matches_dense_on_gpu():
    torch.manual_seed(0)
    linear = torch.nn.Linear(256, 128).cuda().to(torch.bfloat16)
    with torch.no_grad():
        linear.weight.mul_(nm_masks({"w": linear.weight}, 2, 4)["w"].cuda())
    x = torch.randn(64, 256, device="cuda", dtype=torch.bfloat16)
    ref = linear(x)
    model = torch.nn.Sequential(linear)
    assert to_semi_structured_(model) == ["0"] and plain_linears(model) == []
    torch.testing.assert_close(model(x), ref, rtol=2e-2, atol=2e-2)
    assert semi_structured_backend() in ("cuSPARSELt", "CUTLASS")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or cuda_capability() < FP8_MIN_CC, reason="needs CUDA cc >= 8.9")
def test_fp8_scaled_mm_matches_the_fallback_on_gpu():
    torch.manual_seed(0)
    layer = Fp8Linear.from_linear(torch.nn.Linear(256, 128)).cuda()
    x = torch.randn(37, 256, device="cuda", dtype=torch.bfloat16)
    assert layer._fast(x)
    fast = layer(x).float()
    qx, sx = quantize_fp8_rows(x)
    ref = dequantize_fp8_rows(qx, sx) @ dequantize_fp8_rows(layer.weight_fp8, layer.weight_scale).t() + layer.bias
    torch.testing.assert_close(fast, ref, rtol=1e-2, atol=1e-2)
