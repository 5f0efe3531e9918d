"""Each quantization scheme's kernel per device (pipeline.quantize ``kernel_for``/``prepare``) and the
evaluate stage's plan (pipeline.evaluation.kernel): CPU paths against the dense model, refusals on devices a
scheme has no kernel on, the torchao CUDA paths under the gpu marker."""

from __future__ import annotations

import sys

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from pipeline.core.errors import PipelineError
from pipeline.evaluation.kernel import kernel_plan
from pipeline.quantize import SCHEMES, quantize_model, torchao_quantization
from pipeline.models.formats import Kernel
from pipeline.quantize import dynamic_int8, weight_int8

NAMES = ("dynamic_int8", "weight_int8", "weight_int4", "fp8", "fp16", "bf16")
CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def dense(seed: int = 0) -> BertForSequenceClassification:
    """A small BERT whose Linears have tensor-core shapes, except the 2-class classifier."""
    torch.manual_seed(seed)
    return BertForSequenceClassification(BertConfig(
        vocab_size=64, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
        max_position_embeddings=32, num_labels=2)).eval()


def loaded(model: torch.nn.Module, name: str) -> tuple[torch.nn.Module, dict]:
    """``model`` quantized with scheme ``name`` and rebuilt from the stored tensors into a fresh model."""
    tensors, description = quantize_model(model, name)
    fresh = dense(seed=99)
    return SCHEMES.get(name).load(fresh, tensors, description, "model.safetensors").eval(), description


def inputs() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return {"input_ids": torch.randint(5, 64, (3, 12)), "attention_mask": torch.ones(3, 12, dtype=torch.long)}


@pytest.fixture
def fake_gpu(monkeypatch):
    """A CUDA device of the given compute capability, as far as the kernel choice can tell."""
    def make(cc: tuple[int, int]):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: cc)
    return make


def test_on_this_cpu_only_dynamic_int8_has_a_kernel():
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("this CPU runs bf16 natively")
    found = {name: SCHEMES.get(name).kernel_for(CPU) for name in NAMES}
    assert found["dynamic_int8"].name == dynamic_int8.CPU_KERNEL
    for name in NAMES[1:]:
        assert found[name].name is None and found[name].reason.endswith("accuracy and size only"), name
    assert "weight-only int4 has no CPU kernel" in found["weight_int4"].reason


@pytest.mark.parametrize("name", ["weight_int8", "weight_int4", "fp8"])
def test_prepare_refuses_a_device_without_kernel(name):
    model, description = loaded(dense(), name)
    with pytest.raises(PipelineError, match="no CPU kernel"):
        SCHEMES.get(name).prepare(model, CPU, description)


def test_dynamic_int8_cpu_path_runs_int8_linears_close_to_dense():
    reference = dense()
    model, description = loaded(reference, "dynamic_int8")
    prepared = SCHEMES.get("dynamic_int8").prepare(model, CPU, description)
    assert prepared.kernel == dynamic_int8.CPU_KERNEL and prepared.compile is False
    assert (prepared.fast_linears, prepared.slow_linears, prepared.dtype) == (14, [], "float32")
    with torch.no_grad():
        ref, out = reference(**inputs()).logits, prepared.model(**inputs()).logits
    assert 0 < (ref - out).abs().max() < 0.05 * ref.abs().max() + 1e-3  # int8 rounding, not a float run


def test_dynamic_int8_dequantized_for_cuda_holds_the_stored_values():
    reference = dense()
    model, description = loaded(reference, "dynamic_int8")
    stored = dynamic_int8.float_weights(quantize_model(reference, "dynamic_int8")[0], description, "x")
    floated = dynamic_int8._dequantized_(model)
    assert not dynamic_int8.quantized_modules(floated)
    for path in description["quantized_modules"]:
        assert torch.equal(floated.get_submodule(path).weight, stored[f"{path}.weight"]), path


def test_cuda_kernels_need_the_capability_and_torchao(fake_gpu, monkeypatch):
    import importlib.util

    fake_gpu((8, 0))
    assert SCHEMES.get("fp8").kernel_for(CUDA).name is None
    assert "needs compute capability >= 8.9, this GPU has 8.0" in SCHEMES.get("fp8").kernel_for(CUDA).reason
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "torchao" else real(n, *a))
    found = SCHEMES.get("weight_int4").kernel_for(CUDA)
    assert found.name is None and "bert-compress-pipeline[gpu]" in found.reason


def test_missing_torchao_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchao", None)
    monkeypatch.setitem(sys.modules, "torchao.quantization", None)
    with pytest.raises(PipelineError, match=r"\[gpu\]") as err:
        torchao_quantization()
    assert "\n" not in str(err.value)


def test_plan_times_each_format_where_its_kernel_runs(tmp_path, fake_gpu, monkeypatch):
    import importlib.util

    meta = lambda fmt: {"format": fmt, "head": "classification", "stage": "quantize"}  # noqa: E731
    assert kernel_plan(tmp_path, meta("dense"), CPU).kernel.name == "torch cpu float32"
    refused = kernel_plan(tmp_path, meta("weight_int4"), CPU)
    assert refused.where == CPU and refused.kernel.name is None
    assert kernel_plan(tmp_path, meta("onnx_int8"), CPU).kernel.name == "onnxruntime CPUExecutionProvider int8"
    fake_gpu((9, 0))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "torchao" else real(n, *a))
    # a GPU server without torchao: dynamic int8 keeps its CPU kernel; weight-only int8 is scored, not timed
    assert kernel_plan(tmp_path, meta("dynamic_int8"), CUDA) == kernel_plan(tmp_path, meta("dynamic_int8"), CPU)
    no_kernel = kernel_plan(tmp_path, meta("weight_int8"), CUDA)
    assert no_kernel.where == CUDA and no_kernel.kernel.name is None and "[gpu]" in no_kernel.kernel.reason


def test_torchao_int8_weight_only_config_on_cpu_matches_dense(monkeypatch):
    """The scheme's torchao config and Linear count, run through torchao on the CPU (no speed claimed there)."""
    pytest.importorskip("torchao")
    reference = dense()
    model, description = loaded(reference, "weight_int8")
    monkeypatch.setattr(weight_int8, "kernel_for", lambda device: Kernel(weight_int8.KERNEL, "forced for the test"))
    prepared = SCHEMES.get("weight_int8").prepare(model, CPU, description)
    assert (prepared.fast_linears, prepared.slow_linears, prepared.dtype) == (14, [], "bfloat16")
    assert type(prepared.model.classifier.weight).__name__ == "Int8Tensor"
    with torch.no_grad():
        ref, out = reference(**inputs()).logits, prepared.model(**inputs()).logits.float()
    assert (ref - out).abs().max() < 0.05 * ref.abs().max() + 2e-3


def gpu_ready(min_cc=(8, 0)) -> bool:
    try:
        import torchao  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available() and torch.cuda.get_device_capability() >= min_cc


@pytest.mark.gpu
@pytest.mark.parametrize("name,min_cc,fast", [("weight_int8", (8, 0), 14), ("weight_int4", (8, 0), 14),
                                              ("dynamic_int8", (8, 0), 13), ("fp8", (8, 9), 13)])
def test_torchao_cuda_kernels_match_dense(name, min_cc, fast):
    if not gpu_ready(min_cc):
        pytest.skip(f"needs CUDA compute capability >= {min_cc} and torchao")
    reference = dense()
    model, description = loaded(reference, name)
    kernel = SCHEMES.get(name).kernel_for(CUDA)
    assert kernel.name is not None, kernel.reason
    prepared = SCHEMES.get(name).prepare(model, CUDA, description)
    assert prepared.kernel == kernel.name and prepared.fast_linears == fast and prepared.dtype == "bfloat16"
    assert len(prepared.slow_linears) == 14 - fast  # the 2-class classifier where the kernel needs 16s
    x = {k: v.cuda() for k, v in inputs().items()}
    with torch.inference_mode():
        ref = reference.cuda()(**x).logits.float()
        out = torch.compile(prepared.model)(**x).logits.float()
    assert (ref - out).abs().max() < 0.1 * ref.abs().max() + 1e-2, name
