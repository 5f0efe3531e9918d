"""Knowledge distillation: loss terms and the student-training loss closure.

Terms (weights in ``distill.kd``):

- logit KD (Hinton et al., 2015): temperature-softened KL between teacher and student logits; for regression
  (one output, e.g. STS-B) the MSE between student and teacher predictions;
- hidden-state MSE between mapped layers (TinyBERT-style), through a learned linear projection when the
  student is narrower or wider than the teacher;
- attention-map MSE between mapped layers on head-averaged attention probabilities, so students with
  pruned heads (or a different head count) are supported.

Students keep their pruning: masks are re-applied after every step by the caller, physically pruned
shapes are simply the student's shapes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from pipeline.errors import PipelineError
from pipeline.features import Batch
from pipeline.params import KDParams, TaskParams
from pipeline.tasks import hard_loss

PROJECTION = "kd_projection"  # name of the temporary student submodule holding the hidden projection
_LABELS = ("labels", "start_positions", "end_positions")


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


def logit_kd_term(task: TaskParams, temperature: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``(student, teacher) -> loss`` for the task's outputs: :func:`kd_regression_loss` for regression
    classification heads (``num_labels == 1``), else :func:`kd_logit_loss` at ``temperature``."""
    if task.type == "classification" and task.num_labels == 1:
        return kd_regression_loss
    return lambda s, t: kd_logit_loss(s, t, temperature)


def uniform_layer_map(student_layers: int, teacher_layers: int) -> list[int]:
    """Teacher layer (1-based) for each student layer, spread evenly; the last maps to the last."""
    return [round((i + 1) * teacher_layers / student_layers) for i in range(student_layers)]


def resolve_layer_map(kd: KDParams, student_layers: int, teacher_layers: int) -> list[int]:
    """``kd.layer_map`` checked against both depths, or the uniform map when it is empty."""
    if not kd.layer_map:
        return uniform_layer_map(student_layers, teacher_layers)
    if len(kd.layer_map) != student_layers:
        raise PipelineError(f"distill.kd.layer_map has {len(kd.layer_map)} entries for {student_layers} student layers")
    bad = [t for t in kd.layer_map if not 1 <= t <= teacher_layers]
    if bad:
        raise PipelineError(f"distill.kd.layer_map entries {bad} are outside the teacher's layers 1..{teacher_layers}")
    return list(kd.layer_map)


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


def attach_projection(student: torch.nn.Module, teacher: torch.nn.Module) -> torch.nn.Module | None:
    """A trainable Linear from the student's to the teacher's width, held by the student while training
    (so the optimizer sees it); None when the widths are equal."""
    s_width, t_width = student.config.hidden_size, teacher.config.hidden_size
    if s_width == t_width:
        return None
    projection = torch.nn.Linear(s_width, t_width)
    student.add_module(PROJECTION, projection.to(next(student.parameters()).device))
    return projection


def detach_projection(student: torch.nn.Module) -> None:
    """Remove the temporary projection before the student is saved."""
    if hasattr(student, PROJECTION):
        delattr(student, PROJECTION)


def _forward(model: torch.nn.Module, batch: Batch, hidden: bool, attention: bool):
    inputs = {k: v for k, v in batch.items() if k not in _LABELS}
    return model(**inputs, output_hidden_states=hidden, output_attentions=attention)


def _task_logits(out) -> tuple[torch.Tensor, ...]:
    return (out.start_logits, out.end_logits) if hasattr(out, "start_logits") else (out.logits,)


def _use_eager_attention(model: torch.nn.Module) -> None:
    """Attention probabilities are only returned by the eager attention implementation."""
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    else:  # older transformers
        model.config._attn_implementation = "eager"


def kd_loss_fn(teacher: torch.nn.Module, task: TaskParams, kd: KDParams,
               student: torch.nn.Module | None = None) -> Callable[[torch.nn.Module, Batch], torch.Tensor]:
    """``(student, batch) -> loss``:

    ``alpha * KD + (1 - alpha) * CE + hidden_weight * hidden MSE + attention_weight * attention MSE``.

    For QA the logit KD term is the mean over start and end logits; for regression it is the MSE
    (:func:`logit_kd_term`). The teacher runs in eval mode without
    gradients. With ``hidden_weight > 0`` and different widths, pass ``student`` so a projection can be
    attached to it (call :func:`detach_projection` after training).
    """
    teacher.eval()
    logit_term = logit_kd_term(task, kd.temperature)
    hidden, attention = kd.hidden_weight > 0, kd.attention_weight > 0
    layer_map: list[int] = []
    projection = None
    if hidden or attention:
        if student is None:
            raise ValueError("hidden-state or attention KD needs the student to set up layer maps")
        layer_map = resolve_layer_map(kd, student.config.num_hidden_layers, teacher.config.num_hidden_layers)
        if hidden:
            projection = attach_projection(student, teacher)
        if attention:
            _use_eager_attention(student)
            _use_eager_attention(teacher)

    def loss(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
        with torch.no_grad():
            t_out = _forward(teacher, batch, hidden, attention)
        s_out = _forward(model, batch, hidden, attention)
        s_logits, t_logits = _task_logits(s_out), _task_logits(t_out)
        total = sum(logit_term(s, t) for s, t in zip(s_logits, t_logits)) / len(s_logits)
        if kd.alpha < 1.0:
            total = kd.alpha * total + (1 - kd.alpha) * hard_loss(task, s_logits, batch)
        mask = batch["attention_mask"]
        if hidden:
            terms = []
            for i, t_layer in enumerate(layer_map):
                s_h = s_out.hidden_states[i + 1]
                terms.append(masked_mse(projection(s_h) if projection is not None else s_h,
                                        t_out.hidden_states[t_layer], mask))
            total = total + kd.hidden_weight * sum(terms) / len(terms)
        if attention:
            terms = [attention_mse(s_out.attentions[i], t_out.attentions[t - 1], mask) for i, t in enumerate(layer_map)]
            total = total + kd.attention_weight * sum(terms) / len(terms)
        return total

    return loss


def kd_method(kd: KDParams) -> str:
    """A short name of the active terms, e.g. ``logit_kd+hidden+attention``, for ``pipeline.json``."""
    parts = ["logit_kd"]
    if kd.hidden_weight > 0:
        parts.append("hidden")
    if kd.attention_weight > 0:
        parts.append("attention")
    return "+".join(parts)
