"""Supervised training on a task's labelled data, scored on its validation split after every epoch: the
``finetune`` and ``teacher`` stages, and the training that pruning methods and distillation run (their losses
and hooks plugged into the same loop, :mod:`pipeline.train.loop`). Self-supervised pretraining is
:mod:`pipeline.pretrain`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from pipeline.config.args import TrainArgs
from pipeline.core.finite import name_variant
from pipeline.data.features import Feature, Features, batches, collate
from pipeline.metrics.diagnostics import macro_scores
from pipeline.tasks.base import LABEL_KEYS, Task
from pipeline.train.loop import LossFn, fit
from pipeline.train.batches import total_steps
from pipeline.train.run_files import RunFiles


@torch.inference_mode()
def validation_loss(task: Task, model: torch.nn.Module, feats: Sequence[Feature], pad_id: int, batch_size: int,
                    device, logits: np.ndarray | None = None) -> float:
    """The task's hard loss (:meth:`pipeline.tasks.base.Task.hard_loss`) on labelled validation features, the
    mean per feature (classification: per example; QA: per context window), in eval mode (no dropout).

    Features of one length are batched together: no padding enters the loss (a padded position still gets a
    start/end logit, which a per-token cross-entropy would count), so the mean does not depend on the batch size.

    Args:
        feats: the validation split as training features (:meth:`~pipeline.tasks.base.Task.train_features`).
        logits: ``(N, C)`` logits of ``feats`` in order, when scoring already computed them (classification):
            the loss is then taken from them without another forward pass.

    Returns:
        the mean loss (cross-entropy in nats, or MSE for regression; QA: mean of start and end cross-entropy).
    """
    if logits is not None:
        targets = {k: torch.tensor([f[k] for f in feats]) for k in LABEL_KEYS if k in feats[0]}
        return float(task.hard_loss((torch.from_numpy(logits),), targets))
    by_length: dict[int, list[Feature]] = {}
    for f in feats:
        by_length.setdefault(len(f["input_ids"]), []).append(f)
    total = 0.0
    for group in by_length.values():
        for batch in batches(group, batch_size, lambda f: collate(f, pad_id)):
            batch = {k: v.to(device) for k, v in batch.items()}
            total += float(task.hard_loss(task.logits(model, batch), batch)) * len(batch["input_ids"])
    return total / len(feats)


def epoch_scores(task: Task, model: torch.nn.Module, rows: list[dict], feats: Sequence[Feature], tokenizer,
                 batch_size: int, device, eval_feats=None) -> dict:
    """What training logs after each epoch on the validation split: the task's metrics
    (:meth:`~pipeline.tasks.base.Task.score`), ``val_loss`` (:func:`validation_loss`) and, for classification
    with classes, :func:`macro_scores` (its ``accuracy`` only where the task's metrics lack one).

    Reads no random numbers and changes no weight, so training is the same with or without it.

    Args:
        rows: the validation rows; ``feats``: the same rows as labelled features; ``eval_feats``: their
            :meth:`~pipeline.tasks.base.Task.eval_features` (default: encoded here).
    """
    scores, logits, _ = task.score(model, rows, tokenizer, batch_size, device, features=eval_feats)
    out = {**scores, "val_loss": validation_loss(task, model, feats, tokenizer.pad_token_id, batch_size, device,
                                                 logits)}
    labels = task.class_labels(rows)
    if labels is not None and logits is not None:
        macro = macro_scores(labels, logits.argmax(-1), task.num_labels)
        out.update({k: v for k, v in macro.items() if k not in out})
    return out


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
    train_feats: Features | None = None,
) -> tuple[list[dict], dict]:
    """Train on the task's train split, scoring the validation split after every epoch (:func:`epoch_scores`).

    Each split is encoded once for the whole run: the epochs reuse the training features, and every
    epoch's scoring and validation loss reuse the validation split's.

    Args:
        loss_fn: ``(model, batch) -> loss``; defaults to the task's hard-label loss.
        after_step: called after each optimiser step (e.g. to keep pruning masks applied).
        files: where the curves and the resumable checkpoint go (see :class:`pipeline.train.loop.RunFiles`).
        train_feats: the train split's features when the caller has encoded them already.

    Returns:
        ``(history, final validation metrics)``.
    """
    name_variant(model, desc)  # named in a non-finite validation logits error
    valid = task.rows(data_dir, "validation")
    valid_feats = task.train_features(valid, tokenizer)
    valid_eval = task.eval_features(valid, tokenizer, valid_feats)
    feats = train_feats if train_feats is not None else task.train_features(task.rows(data_dir, "train"), tokenizer)
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
        on_epoch=lambda epoch, m: epoch_scores(task, m, valid, valid_feats, tokenizer, eval_batch_size, device,
                                               valid_eval),
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
        feats = task.train_features(task.rows(data_dir, "train"), tokenizer)  # counts the steps, then trains
        hook = make_hook(total_steps(len(feats), args))
        history, _ = train_task(model, task, data_dir, tokenizer, args, device, desc, loss_fn=loss_fn,
                                after_step=hook, files=files, train_feats=feats)
        return {"history": history, "pruner": hook}

    return train
