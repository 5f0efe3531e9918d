"""The training loop: a tiny BERT learns a learnable task; NaN losses stop with a clear error."""

import pytest
import torch
from transformers import BertForSequenceClassification

from pipeline.config.args import TrainArgs
from pipeline.core.errors import PipelineError
from pipeline.data.features import collate
from pipeline.train.loop import fit, linear_schedule


def parity_feats(n=256, seed=0):
    """Label = whether token 7 occurs in the sequence: learnable by attention + pooling."""
    g = torch.Generator().manual_seed(seed)
    feats = []
    for _ in range(n):
        ids = torch.randint(8, 40, (10,), generator=g).tolist()
        label = int(torch.rand(1, generator=g).item() < 0.5)
        if label:
            ids[int(torch.randint(0, 10, (1,), generator=g))] = 7
        feats.append({"input_ids": [2, *ids, 3], "attention_mask": [1] * 12, "labels": label})
    return feats


def accuracy(model, feats):
    batch = collate(feats, 0)
    labels = batch.pop("labels")
    with torch.no_grad():
        return (model(**batch).logits.argmax(-1) == labels).float().mean().item()


def test_loss_goes_down_and_accuracy_beats_chance(tiny_config):
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config)
    feats, held_out = parity_feats(512), parity_feats(128, seed=1)
    history = fit(model, feats, lambda f: collate(f, 0), TrainArgs(epochs=4, batch_size=32, lr=2e-3), torch.device("cpu"), "test")
    assert history[-1]["loss"] < 0.7 * history[0]["loss"]
    assert accuracy(model, held_out) > 0.85


def test_training_is_reproducible(tiny_config):
    def once():
        torch.manual_seed(0)
        model = BertForSequenceClassification(tiny_config)
        fit(model, parity_feats(64), lambda f: collate(f, 0), TrainArgs(epochs=1, batch_size=16), torch.device("cpu"), "t")
        return model.state_dict()

    a, b = once(), once()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_nan_loss_stops_with_a_clear_error(tiny_config):
    model = BertForSequenceClassification(tiny_config)
    nan_loss = lambda m, b: m(**b).loss * float("nan")  # noqa: E731
    with pytest.raises(PipelineError, match="loss is nan at step 0"):
        fit(model, parity_feats(8), lambda f: collate(f, 0), TrainArgs(), torch.device("cpu"), "t", loss_fn=nan_loss)


def test_linear_schedule_shape():
    f = linear_schedule(10, 100)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5) and f(100) == 0.0
