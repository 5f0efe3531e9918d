"""Knowledge distillation: loss functions (registered by name) and the student-training loss closure."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from pipeline.features import Batch
from pipeline.params import KDParams, TaskParams
from pipeline.tasks import hard_loss, logits


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


def kd_loss_fn(teacher: torch.nn.Module, task: TaskParams, kd: KDParams) -> Callable[[torch.nn.Module, Batch], torch.Tensor]:
    """``(student, batch) -> loss`` mixing logit KD and the hard-label loss.

    ``loss = alpha * KD + (1 - alpha) * CE``; for QA the KD term is the mean over start and end logits.
    The teacher runs in eval mode without gradients.
    """
    teacher.eval()

    def loss(student: torch.nn.Module, batch: Batch) -> torch.Tensor:
        with torch.no_grad():
            t_out = logits(teacher, batch)
        s_out = logits(student, batch)
        kd_term = sum(kd_logit_loss(s, t, kd.temperature) for s, t in zip(s_out, t_out)) / len(s_out)
        if kd.alpha == 1.0:
            return kd_term
        return kd.alpha * kd_term + (1 - kd.alpha) * hard_loss(task, s_out, batch)

    return loss
