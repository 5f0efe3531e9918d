"""Pruning: exact sparsity, masks kept, head importance picks the heads that matter."""

import pytest
import torch
from transformers import BertForSequenceClassification

from pipeline.core.errors import PipelineError
from pipeline.models.structure import heads_per_layer
from pipeline.prune import PruneContext, prune_
from pipeline.prune.heads import HeadsParams
from pipeline.prune.magnitude import MagnitudeParams
from pipeline.prune.masks import apply_masks_, magnitude_masks, prunable_weights, sparsity_report, zero_masks


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9])
@pytest.mark.parametrize("scope", ["global", "layer"])
def test_masks_have_the_requested_sparsity(sparsity, scope):
    g = torch.Generator().manual_seed(0)
    weights = {"a": torch.randn(8, 16, generator=g), "b": torch.randn(32, 4, generator=g) * 3}
    masks = magnitude_masks(weights, sparsity, scope)
    total = sum(m.numel() for m in masks.values())
    pruned = sum(int((~m).sum()) for m in masks.values())
    assert pruned == round(sparsity * total) or scope == "layer"
    if scope == "layer":
        for k, m in masks.items():
            assert int((~m).sum()) == round(sparsity * m.numel())
    # kept weights are never smaller in magnitude than pruned ones (per ranking group)
    groups = [masks] if scope == "global" else [{k: v} for k, v in masks.items()]
    for group in groups:
        kept = torch.cat([weights[k][m].abs() for k, m in group.items()])
        dropped = torch.cat([weights[k][~m].abs() for k, m in group.items()])
        if len(kept) and len(dropped):
            assert kept.min() >= dropped.max()


def test_magnitude_pruning_of_a_model(tiny_config):
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config)
    report = prune_(model, "magnitude", MagnitudeParams(sparsity=0.7), PruneContext([], None))
    step = 1 / sum(w.numel() for w in prunable_weights(model).values())  # exact counts round to one weight
    assert abs(report["sparsity"] - 0.7) <= step
    assert abs(sparsity_report(model)["sparsity"] - 0.7) <= step
    masks = zero_masks(model)
    with torch.no_grad():
        for w in prunable_weights(model).values():
            w.add_(1.0)  # a "training step" that touches every weight
    apply_masks_(model, masks)
    assert abs(sparsity_report(model)["sparsity"] - 0.7) <= step


def _batches(n=4, vocab=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [{"input_ids": torch.randint(5, vocab, (8, 12), generator=g), "attention_mask": torch.ones(8, 12, dtype=torch.long),
             "labels": torch.randint(0, 2, (8,), generator=g)} for _ in range(n)]


def test_head_pruning_keeps_the_important_heads(tiny_config):
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config).eval()
    # Make head 3 of every layer dominant and heads 0-2 irrelevant (zero value projections).
    for layer in model.bert.encoder.layer:
        hs = tiny_config.hidden_size // tiny_config.num_attention_heads
        with torch.no_grad():
            layer.attention.self.value.weight[: 3 * hs] = 0
            layer.attention.self.value.bias[: 3 * hs] = 0
            layer.attention.self.value.weight[3 * hs :] *= 10
    loss = lambda m, b: m(**b).loss  # noqa: E731
    report = prune_(model, "heads", HeadsParams(keep_heads=1, batches=4), PruneContext(_batches(), loss))
    assert heads_per_layer(model) == [1, 1]
    assert all(kept == [3] for kept in report["heads_kept"].values())
    out = model(**{k: v for k, v in _batches(1)[0].items() if k != "labels"}).logits
    assert torch.isfinite(out).all()


def test_keep_more_heads_than_exist_is_an_error(tiny_config):
    model = BertForSequenceClassification(tiny_config)
    with pytest.raises(PipelineError, match="exceeds the heads per layer"):
        prune_(model, "heads", HeadsParams(keep_heads=5), PruneContext(_batches(1), lambda m, b: m(**b).loss))
