"""Training a model on a task: the ``finetune`` and ``teacher`` stages, and the training that pruning
methods and distillation run (their losses and hooks plugged into the same loop)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from pipeline.config.args import ArchParams, TrainArgs
from pipeline.data.features import collate
from pipeline.tasks.base import Task
from pipeline.train.loop import LossFn, RunFiles, fit, total_steps


@dataclass
class TeacherParams:
    """The distillation teacher of one task (``teacher.<task>``): its architecture and its training."""

    arch: ArchParams = field(default_factory=ArchParams)
    train: TrainArgs = field(default_factory=TrainArgs)


def train_task(
    model: torch.nn.Module,
    task: Task,
    data_dir: str | Path,
    tokenizer,
    args: TrainArgs,
    device: torch.device,
    desc: str,
    loss_fn: LossFn | None = None,
    after_step=None,
    eval_batch_size: int = 64,
    files: RunFiles | None = None,
) -> tuple[list[dict], dict]:
    """Train on the task's train split, scoring the validation split after every epoch.

    Args:
        loss_fn: ``(model, batch) -> loss``; defaults to the task's hard-label loss.
        after_step: called after each optimiser step (e.g. to keep pruning masks applied).
        files: where the curves and the resumable checkpoint go (see :class:`pipeline.train.loop.RunFiles`).

    Returns:
        ``(history, final validation metrics)``.
    """
    valid = task.rows(data_dir, "validation")
    feats = task.train_features(task.rows(data_dir, "train"), tokenizer)
    pad_id = tokenizer.pad_token_id
    history = fit(
        model,
        feats,
        lambda f: collate(f, pad_id),
        args,
        device,
        desc,
        loss_fn=loss_fn or task.loss,
        after_step=after_step,
        on_epoch=lambda epoch, m: task.score(m, valid, tokenizer, eval_batch_size, device)[0],
        files=files,
    )
    return history, {k: v for k, v in history[-1].items() if k not in ("epoch", "loss")}


def trainer(task: Task, data_dir: str | Path, tokenizer, args: TrainArgs, device: torch.device, desc: str,
            files: RunFiles | None = None):
    """A ``(model, make_hook, loss_fn=None) -> {"history", "pruner"}`` callable for methods that prune while
    training.

    ``make_hook(total_steps)`` builds the after-step hook once the number of optimizer steps is known;
    ``loss_fn`` (default: the task loss) lets a method add its own term, e.g. a penalty.
    """

    def train(model: torch.nn.Module, make_hook, loss_fn: LossFn | None = None) -> dict:
        total = total_steps(len(task.train_features(task.rows(data_dir, "train"), tokenizer)), args)
        hook = make_hook(total)
        history, _ = train_task(model, task, data_dir, tokenizer, args, device, desc, loss_fn=loss_fn,
                                after_step=hook, files=files)
        return {"history": history, "pruner": hook}

    return train
