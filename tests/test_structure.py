"""Physical head / FFN pruning and rebuilding pruned shapes from a saved config."""

from __future__ import annotations

import copy

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification

from pipeline.models.structure import apply_config_shapes_, heads_per_layer, prune_ffn_, prune_heads_

HIDDEN, LAYERS, HEADS, FFN = 32, 3, 4, 64
HEAD_SIZE = HIDDEN // HEADS


def tiny_config() -> BertConfig:
    return BertConfig(
        vocab_size=100, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
        intermediate_size=FFN, max_position_embeddings=32, num_labels=3, pad_token_id=0,
    )


def tiny_model(cls=BertForSequenceClassification, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return cls(tiny_config()).eval()


@pytest.fixture
def inputs() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    ids = torch.randint(5, 100, (3, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0  # some padding, so masking takes part too
    return {"input_ids": ids, "attention_mask": mask}


@torch.no_grad()
def outputs(model, inputs) -> tuple[torch.Tensor, torch.Tensor]:
    """(last hidden state, logits): the encoder check is the sharp one, logits cover the head."""
    return model.base_model(**inputs).last_hidden_state, model(**inputs).logits


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def zero_heads_(model, layer: int, dropped: list[int]) -> None:
    """Reference: silence heads by zeroing their input columns of attention.output.dense."""
    dense = model.base_model.encoder.layer[layer].attention.output.dense
    for h in dropped:
        dense.weight[:, h * HEAD_SIZE : (h + 1) * HEAD_SIZE] = 0


@torch.no_grad()
def zero_neurons_(model, layer: int, dropped: list[int]) -> None:
    """Reference: silence FFN neurons by zeroing their input columns of output.dense."""
    model.base_model.encoder.layer[layer].output.dense.weight[:, dropped] = 0


def assert_same(a, b, atol=1e-5) -> None:
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, atol=atol, rtol=0)


# ----------------------------------------------------------------------------------------- heads


def test_heads_per_layer_of_a_dense_model():
    assert heads_per_layer(tiny_model()) == [HEADS] * LAYERS


def test_pruned_heads_match_masked_heads(inputs):
    model = tiny_model()
    reference = copy.deepcopy(model)
    keep = {0: [1, 3], 2: [2]}
    zero_heads_(reference, 0, [0, 2])
    zero_heads_(reference, 2, [0, 1, 3])
    before = n_params(model)

    prune_heads_(model, keep)

    assert_same(outputs(model, inputs), outputs(reference, inputs))
    dropped = 2 + 3
    # per dropped head: q/k/v rows (weight + bias) and attention.output.dense columns
    assert before - n_params(model) == dropped * (3 * (HIDDEN * HEAD_SIZE + HEAD_SIZE) + HIDDEN * HEAD_SIZE)
    assert model.config.heads_per_layer == [2, HEADS, 1]
    assert heads_per_layer(model) == [2, HEADS, 1]
    attn = model.bert.encoder.layer[0].attention.self
    assert (attn.num_attention_heads, attn.all_head_size) == (2, 2 * HEAD_SIZE)
    assert attn.query.weight.shape == (2 * HEAD_SIZE, HIDDEN)
    assert model.bert.encoder.layer[0].attention.output.dense.weight.shape == (HIDDEN, 2 * HEAD_SIZE)


def test_pruning_heads_twice_uses_current_numbering(inputs):
    model = tiny_model()
    reference = copy.deepcopy(model)
    prune_heads_(model, {0: [0, 2, 3]})
    prune_heads_(model, {0: [1], 1: [3, 0]})  # current head 1 of layer 0 is original head 2; order is free
    zero_heads_(reference, 0, [0, 1, 3])
    zero_heads_(reference, 1, [1, 2])
    assert_same(outputs(model, inputs), outputs(reference, inputs))
    assert model.config.heads_per_layer == [1, 2, HEADS]


def test_head_pruning_is_generic_over_task_heads():
    model = tiny_model(BertForMaskedLM)
    prune_heads_(model, {1: [0]})
    assert heads_per_layer(model) == [HEADS, 1, HEADS]
    with torch.no_grad():
        assert model(input_ids=torch.tensor([[5, 6, 7]])).logits.shape == (1, 3, 100)


@pytest.mark.parametrize(
    ("keep", "message"),
    [
        ({3: [0]}, "layer 3"),
        ({-1: [0]}, "layer -1"),
        ({"0": [0]}, "layer '0'"),
        ({0: []}, "layer 0"),
        ({1: [0, 2, 0]}, "duplicate"),
        ({2: [4]}, "head 4"),
        ({2: [-1]}, "head -1"),
    ],
)
def test_bad_head_specs_raise_and_change_nothing(keep, message):
    model = tiny_model()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=message):
        prune_heads_(model, {1: [0], **keep})  # a valid entry first: it must not be applied either
    assert heads_per_layer(model) == [HEADS] * LAYERS
    assert not hasattr(model.config, "heads_per_layer")
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k])


def test_out_of_range_head_after_pruning():
    model = tiny_model()
    prune_heads_(model, {0: [0, 1]})
    with pytest.raises(ValueError, match="layer 0: head 2 out of range"):
        prune_heads_(model, {0: [2]})


# ----------------------------------------------------------------------------------------- FFN


def test_pruned_neurons_match_masked_neurons(inputs):
    model = tiny_model()
    reference = copy.deepcopy(model)
    keep = {0: list(range(0, FFN, 2)), 1: [5, 1, 63]}
    zero_neurons_(reference, 0, list(range(1, FFN, 2)))
    zero_neurons_(reference, 1, [i for i in range(FFN) if i not in (1, 5, 63)])
    before = n_params(model)

    prune_ffn_(model, keep)

    assert_same(outputs(model, inputs), outputs(reference, inputs))
    dropped = FFN // 2 + FFN - 3
    # per dropped neuron: an intermediate row (weight + bias) and an output column
    assert before - n_params(model) == dropped * (2 * HIDDEN + 1)
    assert model.config.intermediate_per_layer == [FFN // 2, 3, FFN]
    layer = model.bert.encoder.layer[1]
    assert layer.intermediate.dense.weight.shape == (3, HIDDEN)
    assert layer.output.dense.weight.shape == (HIDDEN, 3)


def test_pruning_neurons_twice(inputs):
    model = tiny_model()
    reference = copy.deepcopy(model)
    prune_ffn_(model, {2: [10, 20, 30, 40]})
    prune_ffn_(model, {2: [3, 1]})  # original neurons 20 and 40
    zero_neurons_(reference, 2, [i for i in range(FFN) if i not in (20, 40)])
    assert_same(outputs(model, inputs), outputs(reference, inputs))
    assert model.config.intermediate_per_layer == [FFN, FFN, 2]


@pytest.mark.parametrize(
    ("keep", "message"),
    [({LAYERS: [0]}, f"layer {LAYERS}"), ({0: []}, "layer 0"), ({0: [1, 1]}, "duplicate"), ({0: [FFN]}, f"neuron {FFN}")],
)
def test_bad_neuron_specs_raise(keep, message):
    model = tiny_model()
    with pytest.raises(ValueError, match=message):
        prune_ffn_(model, keep)
    assert model.bert.encoder.layer[0].intermediate.dense.out_features == FFN


# ----------------------------------------------------------------------------------------- save / rebuild


def test_pruned_checkpoint_reloads_from_config(tmp_path, inputs):
    model = tiny_model()
    prune_heads_(model, {0: [0, 3], 1: [2]})
    prune_ffn_(model, {1: list(range(17)), 2: [0, 8]})
    save_file(model.state_dict(), str(tmp_path / "model.safetensors"))
    model.config.save_pretrained(tmp_path)

    config = BertConfig.from_pretrained(tmp_path)
    assert config.heads_per_layer == [2, 1, HEADS]
    assert config.intermediate_per_layer == [FFN, 17, 2]
    torch.manual_seed(123)  # different init: every weight must come from the file
    rebuilt = BertForSequenceClassification(config).eval()
    apply_config_shapes_(rebuilt)
    rebuilt.load_state_dict(load_file(str(tmp_path / "model.safetensors")), strict=True)

    assert heads_per_layer(rebuilt) == [2, 1, HEADS]
    assert rebuilt.bert.encoder.layer[0].attention.self.all_head_size == 2 * HEAD_SIZE
    for a, b in zip(outputs(rebuilt, inputs), outputs(model, inputs)):
        assert torch.equal(a, b)


def test_apply_config_shapes_without_attributes_is_a_no_op():
    model = tiny_model()
    modules = dict(model.named_modules())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    apply_config_shapes_(model)
    model.config.heads_per_layer = [HEADS] * LAYERS  # full sizes: still nothing to do
    model.config.intermediate_per_layer = [FFN] * LAYERS
    apply_config_shapes_(model)
    assert all(m is modules[name] for name, m in model.named_modules())
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k])


def test_apply_config_shapes_is_idempotent_on_a_pruned_model(inputs):
    model = tiny_model()
    prune_heads_(model, {2: [1]})
    expected = outputs(model, inputs)
    apply_config_shapes_(model)  # shapes already match: weights must survive
    assert_same(outputs(model, inputs), expected, atol=0)


@pytest.mark.parametrize(
    ("attr", "value", "message"),
    [("heads_per_layer", [1, 2], "3"), ("heads_per_layer", [1, 0, 1], r"\[1\]"), ("intermediate_per_layer", [1, 1, FFN + 1], r"\[2\]")],
)
def test_apply_config_shapes_rejects_bad_configs(attr, value, message):
    model = tiny_model()
    setattr(model.config, attr, value)
    with pytest.raises(ValueError, match=message):
        apply_config_shapes_(model)
