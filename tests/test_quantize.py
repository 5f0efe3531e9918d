"""Dynamic int8 quantization and its SafeTensors round trip."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch.ao.nn.quantized.dynamic import Linear as QLinear
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification

from pipeline.core.errors import PipelineError
from pipeline.quantize.dynamic_int8 import int8_tensors, load_int8_, quantize_dynamic_int8
from pipeline.models.structure import apply_config_shapes_, prune_ffn_, prune_heads_


def tiny_config() -> BertConfig:
    return BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=32, num_labels=3, pad_token_id=0,
    )


def tiny_model(cls=BertForSequenceClassification, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return cls(tiny_config()).eval()


@pytest.fixture
def inputs() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    ids = torch.randint(5, 100, (3, 9))
    mask = torch.ones_like(ids)
    mask[2, 5:] = 0
    return {"input_ids": ids, "attention_mask": mask}


@torch.no_grad()
def logits(model, inputs) -> torch.Tensor:
    return model(**inputs).logits


def round_trip(qmodel, config: BertConfig, tmp_path, cls=BertForSequenceClassification) -> torch.nn.Module:
    """Save as the pipeline does (SafeTensors + JSON scheme + config) and rebuild from the files alone."""
    tensors, scheme = int8_tensors(qmodel)
    save_file(tensors, str(tmp_path / "model.safetensors"))
    (tmp_path / "scheme.json").write_text(json.dumps(scheme))
    config.save_pretrained(tmp_path)
    torch.manual_seed(99)  # a different init: everything must come from the files
    fresh = cls(BertConfig.from_pretrained(tmp_path))
    apply_config_shapes_(fresh)
    scheme = json.loads((tmp_path / "scheme.json").read_text())
    return load_int8_(fresh, load_file(str(tmp_path / "model.safetensors")), scheme)


def test_quantized_outputs_are_close_to_float(inputs):
    model = tiny_model()
    qmodel = quantize_dynamic_int8(model)
    assert isinstance(model.classifier, torch.nn.Linear)  # the original is untouched
    assert isinstance(qmodel.classifier, QLinear) and not qmodel.training
    with torch.no_grad():
        hidden = model.bert(**inputs).last_hidden_state
        qhidden = qmodel.bert(**inputs).last_hidden_state
    # LayerNorm'ed states are O(1); int8 through three layers stays within a few percent
    assert (hidden - qhidden).abs().max() < 0.02 * hidden.abs().max()
    ref, out = logits(model, inputs), logits(qmodel, inputs)
    assert (ref - out).abs().max() < 0.1 * ref.abs().max()


def test_scheme_lists_every_linear_and_is_json():
    model = tiny_model()
    tensors, scheme = int8_tensors(quantize_dynamic_int8(model))
    linears = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    assert scheme["quantized_modules"] == linears
    assert "classifier" in linears and "bert.pooler.dense" in linears
    assert scheme["scheme"] == "dynamic_int8" and scheme["qscheme"] == "per_tensor_affine"
    assert json.loads(json.dumps(scheme)) == scheme
    path = "bert.encoder.layer.1.intermediate.dense"
    assert tensors[f"{path}.weight_int8"].dtype == torch.int8
    assert tensors[f"{path}.weight_int8"].shape == (64, 32)
    assert tensors[f"{path}.weight_scale"].dtype == torch.float32
    assert tensors[f"{path}.bias"].dtype == torch.float32
    assert "bert.embeddings.word_embeddings.weight" in tensors
    assert "bert.encoder.layer.1.output.LayerNorm.weight" in tensors
    assert not any("_packed_params" in k for k in tensors)


def test_per_tensor_weight_error_is_at_most_half_a_step():
    model = tiny_model()
    tensors, scheme = int8_tensors(quantize_dynamic_int8(model))
    for path in scheme["quantized_modules"]:
        weight = model.get_submodule(path).weight.detach()
        scale = tensors[f"{path}.weight_scale"]
        zero = tensors[f"{path}.weight_zero_point"]
        assert scale.numel() == 1 and zero.numel() == 1
        restored = (tensors[f"{path}.weight_int8"].float() - zero.float()) * scale
        assert ((restored - weight).abs() <= scale / 2 + 1e-7).all(), path


def test_tensors_are_contiguous_and_never_share_storage():
    # the MLM decoder is tied to the word embeddings: the trickiest case for save_file
    tensors, _ = int8_tensors(quantize_dynamic_int8(tiny_model(BertForMaskedLM)))
    assert all(t.is_contiguous() for t in tensors.values())
    pointers = [t.untyped_storage().data_ptr() for t in tensors.values() if t.numel()]
    assert len(pointers) == len(set(pointers))


def test_round_trip_is_bit_identical(tmp_path, inputs):
    model = tiny_model()
    qmodel = quantize_dynamic_int8(model)
    loaded = round_trip(qmodel, model.config, tmp_path)
    assert not loaded.training
    assert torch.equal(logits(loaded, inputs), logits(qmodel, inputs))


def test_round_trip_of_an_mlm_model(tmp_path, inputs):
    model = tiny_model(BertForMaskedLM)
    qmodel = quantize_dynamic_int8(model)
    loaded = round_trip(qmodel, model.config, tmp_path, cls=BertForMaskedLM)
    assert torch.equal(logits(loaded, inputs), logits(qmodel, inputs))


def test_round_trip_of_a_pruned_model(tmp_path, inputs):
    model = tiny_model()
    prune_heads_(model, {0: [1, 2], 2: [0]})
    prune_ffn_(model, {1: list(range(0, 64, 4))})
    qmodel = quantize_dynamic_int8(model)
    assert qmodel.bert.encoder.layer[2].attention.self.query.weight().shape == (8, 32)
    loaded = round_trip(qmodel, model.config, tmp_path)
    assert loaded.bert.encoder.layer[1].output.dense.in_features == 16
    assert torch.equal(logits(loaded, inputs), logits(qmodel, inputs))


def test_per_channel_weights_round_trip(tmp_path, inputs):
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    model = tiny_model()
    with pytest.warns(Warning):  # torch.ao deprecation notices; kept out of the test output
        qmodel = quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
    tensors, scheme = int8_tensors(qmodel)
    assert scheme["qscheme"] == "per_channel_affine"
    assert tensors["classifier.weight_scale"].shape == (3,)
    loaded = round_trip(qmodel, model.config, tmp_path)
    assert torch.equal(logits(loaded, inputs), logits(qmodel, inputs))


def test_missing_and_unexpected_keys_are_named():
    model = tiny_model()
    tensors, scheme = int8_tensors(quantize_dynamic_int8(model))

    broken = dict(tensors)
    del broken["bert.embeddings.LayerNorm.bias"]
    with pytest.raises(PipelineError, match="missing keys.*bert.embeddings.LayerNorm.bias"):
        load_int8_(tiny_model(), broken, scheme)

    broken = dict(tensors)
    del broken["classifier.weight_scale"]
    with pytest.raises(PipelineError, match="classifier.weight_scale"):
        load_int8_(tiny_model(), broken, scheme)

    with pytest.raises(PipelineError, match="unexpected keys.*stray"):
        load_int8_(tiny_model(), {**tensors, "stray": torch.zeros(1)}, scheme)


def test_load_rejects_a_model_of_another_shape():
    model = tiny_model()
    prune_heads_(model, {0: [0]})
    tensors, scheme = int8_tensors(quantize_dynamic_int8(model))
    with pytest.raises(PipelineError, match="attention.self.query.weight_int8"):
        load_int8_(tiny_model(), tensors, scheme)  # shapes not applied


def test_load_rejects_an_unknown_scheme():
    tensors, scheme = int8_tensors(quantize_dynamic_int8(tiny_model()))
    with pytest.raises(PipelineError, match="int4"):
        load_int8_(tiny_model(), tensors, {**scheme, "scheme": "int4"})
