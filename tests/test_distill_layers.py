"""Hidden-state and attention KD: layer maps, projections, zero loss for a perfect copy, learning."""

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from pipeline import tasks
from pipeline.distill.kd import PROJECTION, KDParams, detach_projection, kd_method, uniform_layer_map
from pipeline.distill.kd import kd_loss_fn as kd_terms_fn
from pipeline.core.errors import PipelineError
from pipeline.tasks.classification import ClassificationParams
from pipeline.models.structure import prune_heads_

TASK = tasks.get(ClassificationParams())


def model(hidden=32, layers=2, heads=4, seed=0):
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=64, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=2 * hidden, max_position_embeddings=64, pad_token_id=0,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertForSequenceClassification(config)


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(8, 12, dtype=torch.long)
    mask[:, 9:] = 0
    return {"input_ids": torch.randint(5, 64, (8, 12), generator=g), "attention_mask": mask,
            "labels": torch.randint(0, 2, (8,), generator=g)}


def kd_loss_fn(*args, **kwargs):
    """The KD loss as one scalar: the sum of :func:`pipeline.distill.kd.kd_loss_fn`'s terms."""
    fn = kd_terms_fn(*args, **kwargs)
    return lambda student, b: sum(fn(student, b).values())


def test_uniform_layer_map():
    assert uniform_layer_map(2, 4) == [2, 4]
    assert uniform_layer_map(3, 6) == [2, 4, 6]
    assert uniform_layer_map(4, 4) == [1, 2, 3, 4]


def test_identical_student_has_zero_feature_losses():
    teacher = model().eval()
    student = model().eval()
    kd = KDParams(alpha=1.0, hidden_weight=1.0, attention_weight=1.0)
    loss = kd_loss_fn(teacher, TASK, kd, student)(student, batch())
    assert loss.item() < 1e-6
    assert not hasattr(student, PROJECTION)  # same width: no projection


def test_narrow_student_gets_a_trainable_projection_that_is_removed_after():
    teacher, student = model(hidden=48, layers=4), model(hidden=32, layers=2, seed=1)
    kd = KDParams(hidden_weight=1.0)
    fn = kd_loss_fn(teacher, TASK, kd, student)
    proj = getattr(student, PROJECTION)
    assert (proj.in_features, proj.out_features) == (32, 48)
    assert any(p is proj.weight for p in student.parameters())  # the optimizer will train it
    fn(student, batch()).backward()
    assert proj.weight.grad is not None and proj.weight.grad.abs().sum() > 0
    detach_projection(student)
    assert not hasattr(student, PROJECTION)
    assert kd_method(kd) == "logit_kd+hidden"


def test_feature_kd_trains_a_head_pruned_student_towards_the_teacher():
    teacher = model(layers=2).eval()
    student = model(layers=2, seed=3)
    prune_heads_(student, {0: [0, 1], 1: [2]})
    kd = KDParams(alpha=1.0, hidden_weight=1.0, attention_weight=1.0)
    fn = kd_loss_fn(teacher, TASK, kd, student)
    opt = torch.optim.Adam(student.parameters(), lr=3e-3)
    data = [batch(i) for i in range(4)]
    first = sum(fn(student, b).item() for b in data)
    for _ in range(30):
        for b in data:
            loss = fn(student, b)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert sum(fn(student, b).item() for b in data) < 0.5 * first


def test_bad_layer_map_is_named():
    teacher, student = model(layers=4), model(layers=2)
    with pytest.raises(PipelineError, match="layer_map has 3 entries for 2 student layers"):
        kd_loss_fn(teacher, TASK, KDParams(hidden_weight=1.0, layer_map=[1, 2, 3]), student)
    with pytest.raises(PipelineError, match=r"entries \[5\] are outside the teacher's layers 1..4"):
        kd_loss_fn(teacher, TASK, KDParams(hidden_weight=1.0, layer_map=[2, 5]), student)
