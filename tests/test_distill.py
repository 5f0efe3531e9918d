"""KD loss properties and a student that learns from a teacher."""

import math

import torch

from pipeline.distill import kd_logit_loss


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
