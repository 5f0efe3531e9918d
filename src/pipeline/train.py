"""The one training loop every training stage uses (pretrain, fine-tune, teacher, distill)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from pipeline.errors import PipelineError
from pipeline.features import Batch, Feature, batches
from pipeline.params import TrainArgs

LossFn = Callable[[torch.nn.Module, Batch], torch.Tensor]


def default_loss(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """The model's own loss (cross-entropy for heads given ``labels``/``start_positions``)."""
    return model(**batch).loss


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: no weight decay on biases and LayerNorm weights (standard BERT recipe)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def l1_penalty(model: torch.nn.Module) -> torch.Tensor:
    """Mean absolute value of the encoder's Linear weights (the L1 regulariser of ``TrainArgs.l1``)."""
    weights = [m.weight for m in model.base_model.encoder.modules() if isinstance(m, torch.nn.Linear)]
    return sum(w.abs().sum() for w in weights) / sum(w.numel() for w in weights)


def linear_schedule(warmup: int, total: int) -> Callable[[int], float]:
    """LR multiplier: linear warm-up over ``warmup`` steps, then linear decay to 0 at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def fit(
    model: torch.nn.Module,
    feats: list[Feature],
    collate_fn: Callable[[list[Feature]], Batch],
    args: TrainArgs,
    device: torch.device,
    desc: str,
    loss_fn: LossFn = default_loss,
    after_step: Callable[[torch.nn.Module], None] | None = None,
    on_epoch: Callable[[int, torch.nn.Module], dict] | None = None,
) -> list[dict]:
    """Train ``model`` in place with AdamW and a linear schedule.

    Args:
        feats: training features; shuffled every epoch with ``args.seed + epoch``.
        collate_fn: turns a list of features into a batch of tensors (padding, masking).
        loss_fn: ``(model, batch) -> scalar loss``; defaults to the model's own loss.
        after_step: called after every optimiser step (e.g. to re-apply pruning masks).
        on_epoch: called after each epoch with ``(epoch, model)``; its dict joins the history.

    Returns:
        One dict per epoch: ``{"epoch", "loss", **on_epoch(...)}``.

    Raises:
        PipelineError: when the loss becomes NaN/inf (names the step), instead of saving garbage.
    """
    if not feats:
        raise PipelineError(f"{desc}: no training features")
    model.to(device).train()
    steps_per_epoch = math.ceil(len(feats) / args.batch_size)
    total = max(1, math.ceil(args.epochs * steps_per_epoch))
    optimizer = torch.optim.AdamW(
        param_groups(model, args.weight_decay), lr=args.lr, fused=device.type == "cuda"
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, linear_schedule(int(args.warmup_ratio * total), total)
    )
    history: list[dict] = []
    step = 0
    bar = tqdm(total=total, desc=desc, mininterval=2.0, dynamic_ncols=True)
    for epoch in range(math.ceil(args.epochs)):
        model.train()
        losses = []
        for batch in batches(feats, args.batch_size, collate_fn, shuffle=True, seed=args.seed + epoch):
            if step >= total:
                break
            loss = loss_fn(model, to_device(batch, device))
            if args.l1 > 0:
                loss = loss + args.l1 * l1_penalty(model)
            if not torch.isfinite(loss):
                bar.close()  # end the progress line so the error gets a line of its own
                raise PipelineError(f"{desc}: loss is {loss.item()} at step {step} (lower the learning rate)")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            if after_step is not None:
                after_step(model)
            losses.append(loss.item())
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
        record = {"epoch": epoch + 1, "loss": sum(losses) / max(1, len(losses))}
        if on_epoch is not None:
            model.eval()
            record.update(on_epoch(epoch + 1, model))
        history.append(record)
    bar.close()
    model.eval()
    return history
