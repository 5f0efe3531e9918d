"""Weight-only int8/int4, fp16/bf16 casts and fp8: error bounds, packing, artifact round trips, sizes."""

import pytest
import torch
from transformers import BertForMaskedLM, BertForQuestionAnswering, BertForSequenceClassification

from pipeline.artifacts import load_model
from pipeline.core.errors import PipelineError
from pipeline.core.files import atomic_dir
from pipeline.models.store import WEIGHTS, save_model
from pipeline.quantize import logit_error, quantize_model
from pipeline.quantize.groupwise import GroupParams, dequantize_groups, pack_int4, quantize_groups, unpack_int4
from pipeline.tasks.base import Task


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("group_size", [8, 32])
def test_group_quantization_error_is_at_most_half_a_step(bits, group_size):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(16, 64, generator=g) * 0.1
    q, scale, zero = quantize_groups(w, bits, group_size)
    assert q.dtype == torch.uint8 and int(q.max()) <= 2**bits - 1
    assert scale.shape == zero.shape == (16, 64 // group_size)
    err = (dequantize_groups(q, scale, zero, group_size) - w).abs().reshape(16, -1, group_size)
    bound = scale.float().unsqueeze(-1) * 0.5 + 1e-6
    # the zero point is rounded too, which can move a value by up to one more half step
    assert torch.all(err <= 2 * bound)
    assert err.mean() <= scale.float().mean() * 0.5


def test_zero_is_exact_and_group_size_must_divide():
    w = torch.zeros(2, 8)
    w[0, 3] = 1.0
    q, scale, zero = quantize_groups(w, 4, 8)
    out = dequantize_groups(q, scale, zero, 8)
    assert out[1].abs().max() == 0 and out[0, 0] == 0  # zeros (pruned weights) stay exactly zero
    with pytest.raises(PipelineError, match="not a multiple of quantize.group_size=8"):
        quantize_groups(torch.zeros(2, 12), 4, 8)


def test_int4_pack_round_trip():
    g = torch.Generator().manual_seed(1)
    q = torch.randint(0, 16, (5, 12), generator=g, dtype=torch.uint8)
    packed = pack_int4(q)
    assert packed.shape == (5, 6)
    assert torch.equal(unpack_int4(packed), q)


def _save(tmp_path, name, model, tokenizer_dir, scheme):
    out = tmp_path / name
    meta = {"stage": "quantize", "head": "classification", "format": scheme, "task": "cls"}
    tensors = None
    if scheme != "dense":
        params = GroupParams(group_size=16) if scheme.startswith("weight_") else None
        tensors, meta["quantization"] = quantize_model(model, scheme, params)
    with atomic_dir(out) as tmp:
        save_model(tmp, model, tokenizer_dir, meta, tensors=tensors)
    return out


@pytest.mark.parametrize("scheme,tolerance", [("weight_int8", 0.02), ("weight_int4", 0.3), ("fp16", 0.01),
                                              ("bf16", 0.1), ("fp8", 0.2)])
def test_artifact_round_trip_is_close_and_smaller(tmp_path, tiny_config, tokenizer, scheme, tolerance):
    tokenizer.save_pretrained(tmp_path / "tok")
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config).eval()
    dense = _save(tmp_path, "dense", model, tmp_path / "tok", "dense")
    quant = _save(tmp_path, scheme, model, tmp_path / "tok", scheme)
    loaded, meta = load_model(quant, "classification")
    assert meta["quantization"]["scheme"] == scheme
    g = torch.Generator().manual_seed(2)
    batch = {"input_ids": torch.randint(5, 64, (4, 10), generator=g), "attention_mask": torch.ones(4, 10, dtype=torch.long)}
    err = logit_error(model, loaded, [batch], Task.logits)
    assert 0 < err["logit_max_abs_error"] < tolerance
    assert (quant / WEIGHTS).stat().st_size < (dense / WEIGHTS).stat().st_size
    if scheme == "bf16":
        assert next(loaded.parameters()).dtype == torch.bfloat16


def test_weight_int4_is_smaller_than_int8(tmp_path, tiny_config, tokenizer):
    tokenizer.save_pretrained(tmp_path / "tok")
    model = BertForSequenceClassification(tiny_config).eval()
    size = {s: (_save(tmp_path, s, model, tmp_path / "tok", s) / WEIGHTS).stat().st_size for s in ("weight_int8", "weight_int4")}
    assert size["weight_int4"] < size["weight_int8"]


def test_unknown_scheme():
    with pytest.raises(PipelineError, match="unknown quantization scheme 'int3'"):
        quantize_model(torch.nn.Linear(4, 4), "int3")


HEAD_CLASSES = {"mlm": BertForMaskedLM, "classification": BertForSequenceClassification,
                "qa": BertForQuestionAnswering}
SCHEME_TOLERANCE = {"dynamic_int8": 0.3, "weight_int8": 0.05, "weight_int4": 0.5, "fp16": 0.01, "bf16": 0.1,
                    "fp8": 0.3}


def _outputs(model, batch) -> torch.Tensor:
    out = model(**batch)
    if hasattr(out, "start_logits"):
        return torch.cat([out.start_logits, out.end_logits], -1).float()
    return out.logits.float()


@pytest.mark.parametrize("head", sorted(HEAD_CLASSES))
@pytest.mark.parametrize("scheme", sorted(SCHEME_TOLERANCE))
def test_every_scheme_round_trips_every_head(tmp_path, tiny_config, tokenizer, scheme, head):
    """quantize -> save -> load_model gives outputs close to the float model's, the MLM decoder tied to the
    word embeddings included (it stays tied to the stored embeddings after loading)."""
    tokenizer.save_pretrained(tmp_path / "tok")
    torch.manual_seed(0)
    model = HEAD_CLASSES[head](tiny_config).eval()
    out = tmp_path / scheme
    meta = {"stage": "quantize", "head": head, "format": scheme}
    params = GroupParams(group_size=16) if scheme.startswith("weight_") else None
    tensors, meta["quantization"] = quantize_model(model, scheme, params)
    with atomic_dir(out) as tmp:
        save_model(tmp, model, tmp_path / "tok", meta, tensors=tensors)
    loaded, _ = load_model(out, head)
    g = torch.Generator().manual_seed(3)
    batch = {"input_ids": torch.randint(5, 64, (3, 9), generator=g), "attention_mask": torch.ones(3, 9, dtype=torch.long)}
    with torch.inference_mode():
        expected, got = _outputs(model, batch), _outputs(loaded, batch)
    assert got.shape == expected.shape and torch.isfinite(got).all()
    assert (got - expected).abs().max() < SCHEME_TOLERANCE[scheme]
    if head == "mlm" and scheme != "dynamic_int8":  # dynamic int8 swaps the decoder for an int8 Linear
        assert loaded.cls.predictions.decoder.weight is loaded.bert.embeddings.word_embeddings.weight


@pytest.mark.parametrize("scheme", ["weight_int8", "fp16", "fp8"])
def test_an_untied_mlm_decoder_is_stored_not_dropped(tmp_path, tiny_config, tokenizer, scheme):
    """With ``tie_word_embeddings: false`` the decoder is a weight of its own: it must be stored and quantized
    (transformers' class-level ``_tied_weights_keys`` still names it)."""
    tokenizer.save_pretrained(tmp_path / "tok")
    tiny_config.tie_word_embeddings = False
    torch.manual_seed(0)
    model = BertForMaskedLM(tiny_config).eval()
    assert model.cls.predictions.decoder.weight is not model.bert.embeddings.word_embeddings.weight
    tensors, description = quantize_model(model, scheme, GroupParams(group_size=16) if scheme.startswith("weight_") else None)
    assert any(k.startswith("cls.predictions.decoder.weight") for k in tensors)
    meta = {"stage": "quantize", "head": "mlm", "format": scheme, "quantization": description}
    with atomic_dir(tmp_path / "q") as tmp:
        save_model(tmp, model, tmp_path / "tok", meta, tensors=tensors)
    loaded, _ = load_model(tmp_path / "q", "mlm")
    batch = {"input_ids": torch.arange(5, 14).view(1, 9), "attention_mask": torch.ones(1, 9, dtype=torch.long)}
    with torch.inference_mode():
        assert (_outputs(loaded, batch) - _outputs(model, batch)).abs().max() < SCHEME_TOLERANCE[scheme]
