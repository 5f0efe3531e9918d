"""Knowledge distillation: the student-training loss closure (the ``distill`` stage).

Terms (weights in ``distill.kd``):

- logit KD (Hinton et al., 2015): temperature-softened KL between teacher and student logits; for regression
  (one output, e.g. STS-B) the MSE between student and teacher predictions;
- hidden-state MSE between mapped layers (TinyBERT-style), through a learned linear projection when the
  student is narrower or wider than the teacher;
- attention-map MSE between mapped layers on head-averaged attention probabilities, so students with
  pruned heads (or a different head count) are supported.

Students keep their pruning: masks are re-applied after every step by the caller, physically pruned
shapes are simply the student's shapes. Student and teacher may be of different families (e.g. a DistilBERT
student of a BERT teacher): every term compares them position by position, so they must share the tokenizer
(:func:`load_teacher` checks it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from pipeline.artifacts import load_model
from pipeline.core.errors import PipelineError
from pipeline.data.features import Batch
from pipeline.data.tokenizer import load_tokenizer
from pipeline.distill.losses import attention_mse, kd_logit_loss, kd_regression_loss, masked_mse
from pipeline.models.families import model_inputs
from pipeline.prune.masks import apply_masks_, zero_masks
from pipeline.tasks.base import LABEL_KEYS, Task
from pipeline.train.supervised import train_task

PROJECTION = "kd_projection"  # name of the temporary student submodule holding the hidden projection


@dataclass
class KDParams:
    """Knowledge distillation: logit KD plus optional hidden-state and attention-map terms."""

    temperature: float = 2.0
    alpha: float = 0.5
    """Weight of the logit KD term; ``1 - alpha`` weighs the hard-label loss."""
    hidden_weight: float = 0.0
    """Weight of the hidden-state MSE between mapped layers (0 disables it)."""
    attention_weight: float = 0.0
    """Weight of the attention-map MSE (head-averaged probabilities) between mapped layers (0 disables it)."""
    layer_map: list[int] = field(default_factory=list)
    """Teacher layer (1-based) matched to each student layer; empty maps them uniformly."""

    def __post_init__(self):
        if self.temperature <= 0:
            raise ValueError("temperature must be > 0")
        if not 0 <= self.alpha <= 1:
            raise ValueError("alpha must be in [0, 1]")
        if self.hidden_weight < 0 or self.attention_weight < 0:
            raise ValueError("hidden_weight and attention_weight must be >= 0")
        if any(t < 1 for t in self.layer_map):
            raise ValueError(f"layer_map entries are 1-based teacher layers (>= 1), got {self.layer_map}")


def check_same_tokenizer(student_tokenizer, teacher_tokenizer, student: str, teacher: str) -> None:
    """Refuse a teacher whose tokenizer is not the student's: KD compares logits (and hidden states,
    attention maps) token by token, so both must map text to the same ids.

    Raises:
        PipelineError: naming both artifacts, when the vocabularies or special-token ids differ.
    """
    same_vocab = student_tokenizer.get_vocab() == teacher_tokenizer.get_vocab()
    if not same_vocab or student_tokenizer.all_special_ids != teacher_tokenizer.all_special_ids:
        raise PipelineError(
            f"the teacher {teacher} has another tokenizer ({len(teacher_tokenizer)} tokens) than the student "
            f"{student} ({len(student_tokenizer)} tokens): distillation compares them token by token, so both "
            "must use the same tokenizer")


def load_teacher(path, head: str, student_tokenizer, student_path) -> torch.nn.Module:
    """The teacher artifact at ``path`` (any family), after checking its tokenizer is the student's
    (:func:`check_same_tokenizer`)."""
    teacher, _ = load_model(path, head)
    check_same_tokenizer(student_tokenizer, load_tokenizer(path), str(student_path), str(path))
    return teacher


def weaker_teacher(teacher_meta: dict, student_scores: dict, metric: str) -> str | None:
    """A warning when the teacher scored below the distilled student on the task's primary ``metric`` (both on
    the validation split: the teacher's last epoch as its ``pipeline.json`` ``results`` recorded it, the student's
    last epoch); None when it did not, or when either score is missing. Every primary metric here is maximised.
    """
    results = teacher_meta.get("results") if isinstance(teacher_meta.get("results"), dict) else {}
    teacher, student = results.get(metric), student_scores.get(metric)
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (teacher, student)) or teacher >= student:
        return None
    return (f"warning: the teacher scores below its student ({metric} {teacher:.4f} vs {student:.4f} on the "
            "validation split): it pulls the student toward a weaker model; train a stronger teacher")


def logit_kd_term(task: Task, temperature: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``(student, teacher) -> loss`` for the task's outputs: :func:`~pipeline.distill.losses.kd_regression_loss`
    for a one-output (regression) head, which has no distribution to soften, else
    :func:`~pipeline.distill.losses.kd_logit_loss` at ``temperature``."""
    if task.regression:
        return kd_regression_loss
    return lambda s, t: kd_logit_loss(s, t, temperature)


def uniform_layer_map(student_layers: int, teacher_layers: int) -> list[int]:
    """Teacher layer (1-based, in 1..``teacher_layers``) for each student layer, spread evenly; the last maps to
    the last.

    TinyBERT's uniform strategy (Jiao et al., 2020, section 3.2: student layer m learns from teacher layer
    m * N / M) for any two depths: student layer i (1-based) takes the first teacher layer at or past its
    relative depth, ``ceil(i * T / S)``, in integer arithmetic. Rounding instead gave 0 (the embedding output,
    or ``attentions[-1]``) for a student at least twice as deep as its teacher, and half-to-even rounding made
    uneven repeats.
    """
    if student_layers < 1 or teacher_layers < 1:
        raise PipelineError(f"a uniform layer map needs at least one layer each (student {student_layers}, "
                            f"teacher {teacher_layers})")
    return [-(-(i + 1) * teacher_layers // student_layers) for i in range(student_layers)]


def resolve_layer_map(kd: KDParams, student_layers: int, teacher_layers: int) -> list[int]:
    """``kd.layer_map``, or the uniform map (:func:`uniform_layer_map`) when it is empty, checked against both
    depths: one entry per student layer, each a teacher layer in 1..``teacher_layers``.

    Raises:
        PipelineError: naming ``distill.kd.layer_map`` (or the uniform map computed for it) and the entries.
    """
    given = bool(kd.layer_map)
    layer_map = list(kd.layer_map) if given else uniform_layer_map(student_layers, teacher_layers)
    what = "distill.kd.layer_map" if given else "the uniform layer map (distill.kd.layer_map: [])"
    if len(layer_map) != student_layers:
        raise PipelineError(f"{what} has {len(layer_map)} entries for {student_layers} student layers")
    bad = [t for t in layer_map if not 1 <= t <= teacher_layers]
    if bad:
        raise PipelineError(f"{what} entries {bad} are outside the teacher's layers 1..{teacher_layers}")
    return layer_map


def check_distillation(task: Task, name: str, kd: KDParams, models: dict[str, torch.nn.Module], tokenizer,
                       data_dir) -> None:
    """Everything distillation needs that can be checked before training, one line naming the key or artifact.

    Args:
        name: the task's name (``tasks.<name>``).
        models: ``{student artifact: student, teacher artifact: teacher}``, in that order.
        tokenizer: the student's tokenizer (the one batches are made with).

    Checks: the task against both models and the data (:meth:`pipeline.tasks.base.Task.check`); the teacher's
    tokenizer is the student's (the same ids must mean the same tokens to both); ``kd.layer_map`` against both
    depths when hidden-state or attention KD is on.
    """
    task.check(name, models, tokenizer, data_dir)
    (student_dir, student), (teacher_dir, teacher) = models.items()
    check_same_tokenizer(tokenizer, load_tokenizer(teacher_dir), str(student_dir), str(teacher_dir))
    if kd.hidden_weight > 0 or kd.attention_weight > 0:
        resolve_layer_map(kd, student.config.num_hidden_layers, teacher.config.num_hidden_layers)


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
    inputs = model_inputs(model, {k: v for k, v in batch.items() if k not in LABEL_KEYS})
    return model(**inputs, output_hidden_states=hidden, output_attentions=attention)


def _task_logits(out) -> tuple[torch.Tensor, ...]:
    return (out.start_logits, out.end_logits) if hasattr(out, "start_logits") else (out.logits,)


def _use_eager_attention(model: torch.nn.Module) -> None:
    """Attention probabilities are only returned by the eager attention implementation."""
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    else:  # older transformers
        model.config._attn_implementation = "eager"


def kd_items(hidden: bool, attention: bool) -> Callable[[Batch], dict[str, int]]:
    """``(batch) -> {term: count}``: the items each term of :func:`kd_loss_fn` averages over, for the training
    loop's weighting of micro-batches (:data:`pipeline.train.loop.LossFn`): ``examples`` ``B`` (logit KD and
    the hard loss, per example or QA window), ``hidden`` the real tokens ``sum(attention_mask)`` (the
    hidden-state MSE's denominator over its fixed width), ``attention`` the real query/key pairs
    ``sum_b n_b**2`` (the attention MSE's denominator)."""

    def items(batch: Batch) -> dict[str, int]:
        mask = batch["attention_mask"]
        out = {"examples": len(mask)}
        if hidden:
            out["hidden"] = int(mask.sum())
        if attention:
            out["attention"] = int((mask.sum(1) ** 2).sum())
        return out

    return items


def kd_loss_fn(teacher: torch.nn.Module, task: Task, kd: KDParams,
               student: torch.nn.Module | None = None) -> Callable[[torch.nn.Module, Batch], dict[str, torch.Tensor]]:
    """``(student, batch) -> {term: loss}``, whose sum is

    ``alpha * KD + (1 - alpha) * CE + hidden_weight * hidden MSE + attention_weight * attention MSE``.

    Terms: ``examples`` (logit KD and hard loss, means per example), ``hidden`` and ``attention`` (when their
    weight is > 0; means over real tokens and real token pairs, padding excluded), counted by its ``items``
    attribute (:func:`kd_items`) so gradient accumulation and several processes weight each term by its own
    items. For QA the logit KD term is the mean over start and end logits; for regression it is the MSE
    (:func:`logit_kd_term`). The teacher runs in eval mode without gradients. With ``hidden_weight > 0`` and
    different widths, pass ``student`` so a projection can be attached to it (call :func:`detach_projection`
    after training).

    Raises:
        ValueError: hidden-state or attention KD without ``student``.
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

    def loss(model: torch.nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            t_out = _forward(teacher, batch, hidden, attention)
        s_out = _forward(model, batch, hidden, attention)
        # QA: padded positions out of both softmaxes, so a window's loss does not depend on its batch's padding.
        s_logits = task.mask_padding(_task_logits(s_out), batch)
        t_logits = task.mask_padding(_task_logits(t_out), batch)
        total = sum(logit_term(s, t) for s, t in zip(s_logits, t_logits)) / len(s_logits)
        if kd.alpha < 1.0:
            total = kd.alpha * total + (1 - kd.alpha) * task.hard_loss(s_logits, batch)
        out = {"examples": total}
        mask = batch["attention_mask"]
        if hidden:
            terms = []
            for i, t_layer in enumerate(layer_map):
                s_h = s_out.hidden_states[i + 1]
                terms.append(masked_mse(projection(s_h) if projection is not None else s_h,
                                        t_out.hidden_states[t_layer], mask))
            out["hidden"] = kd.hidden_weight * sum(terms) / len(terms)
        if attention:
            terms = [attention_mse(s_out.attentions[i], t_out.attentions[t - 1], mask) for i, t in enumerate(layer_map)]
            out["attention"] = kd.attention_weight * sum(terms) / len(terms)
        return out

    loss.items = kd_items(hidden, attention)
    return loss


def kd_method(kd: KDParams) -> str:
    """A short name of the active terms, e.g. ``logit_kd+hidden+attention``, for ``pipeline.json``."""
    parts = ["logit_kd"]
    if kd.hidden_weight > 0:
        parts.append("hidden")
    if kd.attention_weight > 0:
        parts.append("attention")
    return "+".join(parts)


def distill_student(student: torch.nn.Module, teacher: torch.nn.Module, task: Task, kd: KDParams, data_dir,
                    tokenizer, args, device: torch.device, desc: str, files=None) -> tuple[list[dict], dict]:
    """Train ``student`` on the task with :func:`kd_loss_fn` against ``teacher``, in place.

    Weights that are exactly zero (a zeroing pruning method's masks) are kept at zero after every step, and a
    physically pruned student keeps its shapes; the hidden-state projection is removed afterwards.

    Args:
        args: the student's :class:`pipeline.config.args.TrainArgs`.
        files: curves and checkpoint locations (:class:`pipeline.train.loop.RunFiles`).

    Returns:
        ``(history, final validation metrics)`` as :func:`pipeline.train.supervised.train_task` gives them.
    """
    masks = {k: m.to(device) for k, m in zero_masks(student).items()}
    loss_fn = kd_loss_fn(teacher.to(device), task, kd, student.to(device))
    history, scores = train_task(student, task, data_dir, tokenizer, args, device, desc, loss_fn=loss_fn,
                                 after_step=(lambda m: apply_masks_(m, masks)) if masks else None, files=files)
    detach_projection(student)
    return history, scores
