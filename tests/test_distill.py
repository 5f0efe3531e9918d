"""KD loss properties and a student that learns from a teacher."""

import math

import pytest
import torch

from pipeline import tasks
from pipeline.distill.losses import kd_logit_loss


def test_kd_loss_is_zero_for_identical_logits_and_positive_otherwise():
    g = torch.Generator().manual_seed(0)
    t = torch.randn(16, 5, generator=g)
    assert kd_logit_loss(t, t, 2.0).abs().item() < 1e-6
    assert kd_logit_loss(torch.randn(16, 5, generator=g), t, 2.0).item() > 0


def test_kd_loss_matches_a_direct_computation():
    g = torch.Generator().manual_seed(1)
    s, t, temp = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g), 3.0
    p_t = torch.softmax(t / temp, -1)
    direct = (p_t * (p_t.log() - torch.log_softmax(s / temp, -1))).sum(-1).mean() * temp**2
    assert math.isclose(kd_logit_loss(s, t, temp).item(), direct.item(), rel_tol=1e-5)


def test_student_matches_teacher_by_kd():
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    teacher = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    student = torch.nn.Linear(8, 3)
    opt = torch.optim.Adam(student.parameters(), lr=0.05)
    with torch.no_grad():
        t = teacher(x)
    first = kd_logit_loss(student(x), t, 2.0).item()
    for _ in range(200):
        loss = kd_logit_loss(student(x), t, 2.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first
    agree = (student(x).argmax(-1) == t.argmax(-1)).float().mean().item()
    assert agree > 0.8


def test_regression_kd_is_mse_and_classification_kd_is_kl():
    from pipeline.distill.kd import logit_kd_term
    from pipeline.distill.losses import kd_regression_loss
    from pipeline.tasks.classification import ClassificationParams

    s, t = torch.tensor([[0.5], [2.0], [-1.0]]), torch.tensor([[1.0], [2.0], [1.0]])
    assert kd_regression_loss(s, t).item() == pytest.approx((0.25 + 0 + 4) / 3)
    assert kd_regression_loss(t, t).item() == 0.0
    stsb = tasks.get(ClassificationParams(num_labels=1, glue="stsb"))
    assert logit_kd_term(stsb, 4.0)(s, t).item() == pytest.approx((0.25 + 4) / 3)  # no temperature
    g = torch.Generator().manual_seed(2)
    s3, t3 = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    mnli = tasks.get(ClassificationParams(num_labels=3, glue="mnli"))
    assert logit_kd_term(mnli, 3.0)(s3, t3).item() == pytest.approx(kd_logit_loss(s3, t3, 3.0).item())


def test_kd_loss_fn_on_a_regression_task(tiny_config):
    """alpha * MSE(student, teacher) + (1 - alpha) * MSE(student, gold) for a one-output head."""
    from transformers import BertForSequenceClassification

    from pipeline.distill.kd import KDParams, kd_loss_fn
    from pipeline.tasks.classification import ClassificationParams

    tiny_config.num_labels = 1
    torch.manual_seed(0)
    teacher, student = BertForSequenceClassification(tiny_config), BertForSequenceClassification(tiny_config)
    student.eval()  # no dropout, so the direct computation below sees the same outputs
    batch = {"input_ids": torch.randint(5, 20, (4, 7)), "attention_mask": torch.ones(4, 7, dtype=torch.long),
             "labels": torch.tensor([0.0, 1.5, 3.0, 5.0])}
    task = tasks.get(ClassificationParams(num_labels=1, glue="stsb"))
    terms = kd_loss_fn(teacher, task, KDParams(temperature=3.0, alpha=0.25))(student, batch)
    assert list(terms) == ["examples"]  # logit KD and hard loss: both means per example
    loss = terms["examples"]
    with torch.no_grad():
        t_out = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    s_out = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    expected = 0.25 * ((s_out - t_out) ** 2).mean() + 0.75 * ((s_out[:, 0] - batch["labels"]) ** 2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()  # gradients reach the student
    assert student.classifier.weight.grad.abs().sum() > 0
