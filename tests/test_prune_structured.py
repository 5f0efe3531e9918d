"""N:M masks, FFN-neuron pruning and layer dropping: exact patterns, the right units go, reload is exact."""

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from pipeline.core.errors import PipelineError
from pipeline.models.build import empty_model, load_state_
from pipeline.prune import PruneContext, prune_
from pipeline.prune.ffn import FFNParams
from pipeline.prune.importance import layer_importance
from pipeline.prune.layers import LayersParams
from pipeline.prune.masks import prunable_weights, sparsity_report
from pipeline.prune.nm import NMParams, nm_masks
from pipeline.models.structure import intermediate_per_layer


def _batches(n=3, vocab=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [{"input_ids": torch.randint(5, vocab, (8, 12), generator=g),
             "attention_mask": torch.ones(8, 12, dtype=torch.long),
             "labels": torch.randint(0, 2, (8,), generator=g)} for _ in range(n)]


def _loss(model, batch):
    return model(**batch).loss


def _logits(model, batch):
    return model(**{k: v for k, v in batch.items() if k != "labels"}).logits


def _reload(model, tmp_path):
    """Save config + weights and rebuild through the project's loader path."""
    model.config.save_pretrained(tmp_path)
    fresh = empty_model(tmp_path, "classification").eval()
    load_state_(fresh, {k: v.clone() for k, v in model.state_dict().items()}, "test")
    return fresh


@pytest.mark.parametrize("n,m", [(2, 4), (1, 4), (4, 8)])
def test_nm_masks_keep_exactly_n_largest_of_every_group(n, m):
    g = torch.Generator().manual_seed(1)
    w = torch.randn(6, 16, generator=g)
    mask = nm_masks({"w": w}, n, m)["w"]
    groups, kept = w.abs().view(6, -1, m), mask.view(6, -1, m)
    assert torch.all(kept.sum(-1) == n)
    smallest_kept = torch.where(kept, groups, torch.inf).amin(-1)
    largest_dropped = torch.where(~kept, groups, -torch.inf).amax(-1)
    assert torch.all(smallest_kept >= largest_dropped)


def test_nm_rejects_a_dimension_that_is_not_a_multiple_of_m():
    with pytest.raises(PipelineError, match="not a multiple of m=4"):
        nm_masks({"w": torch.randn(3, 6)}, 2, 4)


def test_two_four_pruning_of_a_model_is_exactly_half(tiny_config):
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config)
    report = prune_(model, "nm", NMParams(), PruneContext([], None))
    assert report["pattern"] == "2:4" and report["sparsity"] == 0.5
    for w in prunable_weights(model).values():
        assert torch.all((w.view(w.shape[0], -1, 4) != 0).sum(-1) <= 2)
    assert sparsity_report(model)["sparsity"] == 0.5


def test_ffn_pruning_keeps_the_neurons_that_matter_and_reloads_exactly(tiny_config, tmp_path):
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config).eval()
    with torch.no_grad():  # neurons 0..47 of every layer feed nothing downstream: zero importance
        for layer in model.bert.encoder.layer:
            layer.output.dense.weight[:, :48] = 0
    batch = _batches(1)[0]
    before = _logits(model, batch)
    report = prune_(model, "ffn", FFNParams(keep_ratio=0.25, batches=3), PruneContext(_batches(), _loss))
    assert intermediate_per_layer(model) == [16, 16] == report["intermediate_per_layer"]
    # only irrelevant neurons were removed, so the function is unchanged
    torch.testing.assert_close(_logits(model, batch), before, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(_logits(_reload(model, tmp_path), batch), before, rtol=1e-5, atol=1e-5)


def test_layer_dropping_keeps_ends_drops_least_important_and_is_a_plain_bert(tmp_path):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, pad_token_id=0)
    model = BertForSequenceClassification(config).eval()
    data = _batches()
    importance = layer_importance(model, data, _loss)
    report = prune_(model, "layers", LayersParams(keep_layers=3, batches=3), PruneContext(data, _loss))
    expected_middle = max((1, 2), key=lambda i: importance[i])
    assert report["layers_kept"] == sorted([0, 3, expected_middle])
    assert model.config.num_hidden_layers == 3 and len(model.bert.encoder.layer) == 3
    batch = data[0]
    after = _logits(model, batch)
    # a plain transformers model of the new depth loads the weights and computes the same thing
    model.save_pretrained(tmp_path)
    plain = BertForSequenceClassification.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(_logits(plain, batch), after)
    with pytest.raises(PipelineError, match="exceeds"):
        prune_(model, "layers", LayersParams(keep_layers=4), PruneContext(data, _loss))


def test_keep_ratio_one_and_all_layers_change_nothing(tiny_config):
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config).eval()
    batch = _batches(1)[0]
    before = _logits(model, batch)
    prune_(model, "ffn", FFNParams(keep_ratio=1.0), PruneContext(_batches(), _loss))
    prune_(model, "layers", LayersParams(keep_layers=2), PruneContext(_batches(), _loss))
    torch.testing.assert_close(_logits(model, batch), before)
