"""Distillation loss terms: pure tensor functions with their shapes.

- logit KD (Hinton et al., 2015): temperature-softened KL between teacher and student logits; for regression
  (one output, e.g. STS-B) the MSE between student and teacher predictions;
- hidden-state MSE between mapped layers (TinyBERT-style, Jiao et al., 2020) over real tokens;
- attention-map MSE on head-averaged attention probabilities, so students with pruned heads (or another head
  count) are supported.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kd_logit_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Soft-target KL divergence of Hinton et al. (2015), scaled by ``T^2`` so gradients keep their size.

    Args:
        student: ``(N, C)`` student logits.
        teacher: ``(N, C)`` teacher logits (no gradient needed).
        temperature: softening temperature ``T > 0``.

    Returns:
        Scalar ``T^2 * KL(softmax(teacher/T) || softmax(student/T))``, averaged over the N rows.
    """
    t = temperature
    log_p_student = F.log_softmax(student / t, dim=-1)
    log_p_teacher = F.log_softmax(teacher / t, dim=-1)
    return F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean") * t * t


def kd_regression_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Logit KD for regression heads: mean squared error between student and teacher predictions.

    A single output has no distribution to soften, so the temperature does not apply.

    Args:
        student: ``(N, 1)`` student outputs.
        teacher: ``(N, 1)`` teacher outputs (no gradient needed).

    Returns:
        Scalar mean of ``(student - teacher)^2``.
    """
    return F.mse_loss(student, teacher.to(student.dtype))


def masked_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the positions where ``mask`` (``(B, T)``) is set, averaged per element."""
    m = mask.to(student.dtype).unsqueeze(-1)
    diff = (student - teacher) ** 2 * m
    return diff.sum() / (m.sum() * student.shape[-1]).clamp(min=1)


def attention_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE of head-averaged attention probabilities ``(B, H, T, T)`` over real query/key pairs."""
    s, t = student.mean(1), teacher.mean(1)
    pair = mask[:, :, None] * mask[:, None, :]
    diff = (s - t) ** 2 * pair.to(s.dtype)
    return diff.sum() / pair.sum().clamp(min=1)
