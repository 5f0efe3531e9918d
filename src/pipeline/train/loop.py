"""The one training loop every training stage uses (pretrain, fine-tune, teacher, distill, pruning while training).

``fit`` reads as its steps: :func:`_setup` (optimizer, schedule, processes), :func:`_resume` (checkpoint),
:func:`_epoch` (micro-batches -> :func:`_step`), :func:`_save` (checkpoint). Each optimizer step consumes a
global batch of ``batch_size * grad_accum_steps * world_size`` examples (see :mod:`pipeline.train.batches`);
each piece's loss is weighted by its share of the global batch and the processes' gradients are summed, so
the update equals a single process on the whole global batch (exactly for per-example mean losses; padded
pieces of a short last batch keep their true weights).

``accelerate``'s :class:`~accelerate.Accelerator` provides the process group facts (rank, process count),
the collectives (broadcast of the initial weights, the gradient and loss sums, gathering RNG states),
``backward`` and ``clip_grad_norm_``. What it is not used for, because it would change the results:

- ``prepare(model)`` (DDP): it averages gradients (a division by the process count, not exact for 3
  processes) and needs every process to run a backward in every micro-batch, while a short last global batch
  leaves some processes an empty piece; one flat all-reduce after the step's micro-batches is used instead.
- ``accumulate()`` / ``gradient_accumulation_steps``: it divides each loss by the step count, which is wrong
  for the uneven pieces of a short last batch; the loop weights each piece by its share.
- ``prepare(dataloader)``: see :mod:`pipeline.train.batches`. ``prepare(scheduler)``: the prepared scheduler
  steps once per process per optimizer step (without ``split_batches``), while the schedule here counts
  global optimizer steps. ``prepare(optimizer)`` adds nothing without an fp16 scaler.
- ``mixed_precision`` / ``autocast``: the AcceleratorState is one per process and refuses another
  ``mixed_precision`` later in the same process (tests train with several ``precision`` values in one
  process; ``auto`` means bf16 only on a GPU that has it), so autocast is entered with ``torch.autocast``
  from ``TrainArgs.precision``; the Accelerator is always built with ``mixed_precision="no"``.
- ``device``: the same singleton fixes one device per process (tests train on CPU and GPU in one process);
  ``fit`` places the model on the ``device`` it is given. In a multi-process run that device comes from
  accelerate's ``PartialState`` (:func:`pipeline.core.runtime.setup`), so it is the Accelerator's.
- ``save_state``/``load_state``: they pickle (RNG states); see :mod:`pipeline.train.checkpoint`.
"""

from __future__ import annotations

import contextlib
import math
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, GradientAccumulationPlugin, broadcast
from tqdm.auto import tqdm

from pipeline.config.args import TrainArgs
from pipeline.core.errors import PipelineError
from pipeline.core.runtime import autocast_dtype
from pipeline.data.features import Batch, Feature
from pipeline.models import families
from pipeline.train import checkpoint
from pipeline.train.batches import (MEGABATCH, epoch_loader, epoch_order, global_batch, rank_microbatches,
                                    steps_per_epoch, total_steps)
from pipeline.train.run_files import Curves, RunFiles, epoch_values

__all__ = ["MEGABATCH", "LossFn", "RunFiles", "default_loss", "epoch_order", "fit", "global_batch", "l1_penalty",
           "linear_schedule", "param_groups", "rank_microbatches", "total_steps"]

LossFn = Callable[[torch.nn.Module, Batch], torch.Tensor]

# Reading a loss (.item()) waits for the GPU; on CUDA the step losses are read SYNC_EVERY steps at a time so
# the CPU keeps queueing work (a NaN is then reported a few steps late, still before saving).
SYNC_EVERY = 32


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
    """Mean absolute value of the encoder's Linear weights (the L1 regulariser of ``TrainArgs.l1``); a scalar."""
    weights = [m.weight for m in families.of(model).prunable_linears(model).values()]
    return sum(w.abs().sum() for w in weights) / sum(w.numel() for w in weights)


def linear_schedule(warmup: int, total: int) -> Callable[[int], float]:
    """LR multiplier: linear warm-up over ``warmup`` steps, then linear decay to 0 at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Every tensor of ``batch`` on ``device`` (asynchronous from pinned memory)."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@dataclass
class _Run:
    """One ``fit`` call: what it trains with (set up once) and its progress (what a checkpoint saves)."""

    model: torch.nn.Module
    forward_model: torch.nn.Module  # ``model`` or its compiled wrapper (what the loss function calls)
    feats: list[Feature]
    collate_fn: Callable[[list[Feature]], Batch]
    args: TrainArgs
    device: torch.device
    desc: str
    loss_fn: LossFn
    after_step: Callable[[torch.nn.Module], None] | None
    accelerator: Accelerator
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    dtype: torch.dtype | None  # autocast dtype, None for plain fp32
    total: int  # optimizer steps of the whole run
    ckpt: Path | None  # checkpoint directory, None without checkpoints
    fingerprint: str
    step: int = 0  # optimizer steps done
    epoch_losses: list[float] = field(default_factory=list)  # step losses of the current epoch
    history: list[dict] = field(default_factory=list)  # finished epochs, with the ``step`` they ended at
    step_log: list[list] = field(default_factory=list)  # ``[step, loss, lr]`` rows logged so far
    pending: list[tuple[int, torch.Tensor, float]] = field(default_factory=list)  # losses not read yet
    curves: Curves | None = None
    bar: tqdm | None = None

    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    @property
    def world_size(self) -> int:
        return self.accelerator.num_processes


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
    files: RunFiles | None = None,
) -> list[dict]:
    """Train ``model`` in place with AdamW and a linear schedule, on one process or several (data parallel).

    Args:
        feats: training features; shuffled every epoch with ``args.seed + epoch``.
        collate_fn: turns a list of features into a batch of tensors (padding, masking). A ``generator``
            attribute (a ``torch.Generator``) is saved in checkpoints.
        args: batch size per process and micro-batch, accumulation, precision, compile, etc.
        device: where the model trains (every process's own device in a multi-process run).
        desc: progress-bar label, also part of the checkpoint fingerprint and of error messages.
        loss_fn: ``(model, batch) -> scalar loss`` (a per-example mean); defaults to the model's own loss.
            It receives the compiled model when ``args.compile``.
        after_step: called after every optimiser step (e.g. to re-apply pruning masks). With checkpoints
            it must be a plain function (stateless) or have ``state_dict``/``load_state_dict`` (tensors and
            JSON values only).
        on_epoch: called after each epoch with ``(epoch, model)``; its dict joins the history and the
            ``eval/`` curves. Runs on every process (each needs the result); only rank 0 logs.
        files: dvclive directory and checkpoint directory (both optional); the curves are staged until
            ``files.done()``.

    Returns:
        One dict per epoch: ``{"epoch", "loss", **on_epoch(...)}``.

    Raises:
        PipelineError: no features; the loss becomes NaN/inf (names the step), instead of saving garbage;
            a checkpoint that cannot be read (delete it) or that not every process sees.
    """
    if not feats:
        raise PipelineError(f"{desc}: no training features")
    files = files or RunFiles()
    run = _setup(model, feats, collate_fn, args, device, desc, loss_fn, after_step, files)
    _resume(run)
    run.curves = Curves(files, run.accelerator.is_main_process)
    run.curves.replay(run.step_log, run.history)
    run.bar = tqdm(total=run.total, initial=run.step, desc=desc, mininterval=2.0, dynamic_ncols=True,
                   disable=not run.accelerator.is_main_process)
    try:
        for epoch in range(len(run.history), math.ceil(args.epochs)):
            _epoch(run, epoch, on_epoch)
    except BaseException:
        run.curves.discard()
        raise
    finally:
        run.bar.close()  # ends the progress line, so an error gets a line of its own
    model.eval()
    return [{k: v for k, v in r.items() if k != "step"} for r in run.history]


def _setup(model, feats, collate_fn, args: TrainArgs, device: torch.device, desc: str, loss_fn, after_step,
           files: RunFiles) -> _Run:
    """Place the model, start every process from rank 0's weights, build optimizer and schedule.

    Raises:
        PipelineError: checkpoints asked for with an ``after_step`` hook that cannot save its state.
    """
    accelerator = _accelerator(desc)
    model.to(device).train()
    if accelerator.num_processes > 1:
        broadcast([t.data for t in (*model.parameters(), *model.buffers())], from_process=0)
    total = total_steps(len(feats), args, accelerator.num_processes)
    optimizer = torch.optim.AdamW(param_groups(model, args.weight_decay), lr=args.lr, fused=device.type == "cuda")
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_schedule(int(args.warmup_ratio * total), total))
    ckpt = files.checkpoint if args.checkpoint_every > 0 else None
    if ckpt is not None and not _resumable(after_step):
        raise PipelineError(
            f"{desc}: checkpoint_every > 0 but the training hook {type(after_step).__name__} cannot save its "
            "state (a resume would restart its schedule); set checkpoint_every: 0"
        )
    return _Run(
        model=model, forward_model=torch.compile(model, dynamic=True) if args.compile else model, feats=feats,
        collate_fn=collate_fn, args=args, device=device, desc=desc, loss_fn=loss_fn, after_step=after_step,
        accelerator=accelerator, optimizer=optimizer, scheduler=scheduler,
        dtype=autocast_dtype(args.precision, device), total=total, ckpt=ckpt,
        fingerprint=checkpoint.fingerprint(args, len(feats), accelerator.num_processes, desc),
    )


def _accelerator(desc: str) -> Accelerator:
    """The process's Accelerator with nothing of its own that changes numerics: no mixed precision and no
    loss division for accumulation, whatever ``accelerate launch`` put in the environment
    (``ACCELERATE_MIXED_PRECISION``, ``ACCELERATE_GRADIENT_ACCUMULATION_STEPS``).

    Raises:
        PipelineError: launched with DeepSpeed, FSDP, Megatron or XLA (this loop is plain data parallel).
    """
    one_step = GradientAccumulationPlugin(num_steps=1)
    accelerator = Accelerator(mixed_precision="no", gradient_accumulation_plugin=one_step)
    if accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP,
                                        DistributedType.MEGATRON_LM, DistributedType.XLA):
        raise PipelineError(f"{desc}: accelerate launched with {accelerator.distributed_type.value}; the training "
                            "loop is data parallel only (launch.command: 'accelerate launch --multi_gpu ...')")
    return accelerator


def _resumable(hook) -> bool:
    """A hook resumes exactly if it is a plain function (stateless, e.g. re-applying fixed masks) or saves state."""
    return hook is None or isinstance(hook, types.FunctionType) or (
        hasattr(hook, "state_dict") and hasattr(hook, "load_state_dict"))


def _resume(run: _Run) -> None:
    """Continue from ``run.ckpt`` when it holds a checkpoint of the same settings (every process reads it).

    Raises:
        PipelineError: the checkpoint is damaged (one line: delete it), or not every process found it.
    """
    if run.ckpt is None:
        return
    main = run.accelerator.is_main_process
    index = checkpoint.read_index(run.ckpt)
    if index is None:
        if main and (run.ckpt / checkpoint.LEGACY).exists():
            legacy = run.ckpt / checkpoint.LEGACY
            print(f"{run.desc}: ignoring {legacy} (a pickle checkpoint: never loaded)", flush=True)
    elif index["state"]["fingerprint"] != run.fingerprint:
        if main:
            print(f"{run.desc}: ignoring {run.ckpt} (written by other settings)", flush=True)
    else:
        try:
            _restore(run, checkpoint.read_state(run.ckpt, index))
        except checkpoint.DAMAGE as err:
            raise checkpoint.unreadable(run.ckpt, err) from err
        print(f"{run.desc}: resumed from {run.ckpt} at step {run.step}", flush=True)
    steps = run.accelerator.gather(torch.tensor([run.step], device=run.device))
    if len(set(steps.tolist())) > 1:
        raise PipelineError(f"{run.desc}: {run.ckpt} is not visible to every process (it needs a shared filesystem)")


def _restore(run: _Run, state: dict) -> None:
    """Load a checkpoint's state into the run (weights, optimizer, schedule, RNGs, hook, progress).

    Raises:
        KeyError, TypeError, ValueError, RuntimeError, IndexError: the state does not fit this run.
    """
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    checkpoint.set_rng_state(state["rng"], run.rank, run.collate_fn)
    if state["hook"] is not None:
        run.after_step.load_state_dict(state["hook"])
    run.step, run.epoch_losses, run.history, run.step_log = _progress(state, run)


def _progress(state: dict, run: _Run) -> tuple[int, list[float], list[dict], list[list]]:
    """A checkpoint's ``(step, epoch_losses, history, log)``, checked to fit ``run``.

    Raises:
        ValueError: they do not (a damaged or hand-made checkpoint).
    """
    step, losses, history, log = state["step"], state["epoch_losses"], state["history"], state["log"]
    fits = (
        isinstance(step, int) and 0 <= step <= run.total and len(history) <= math.ceil(run.args.epochs)
        and all(isinstance(r, dict) and {"epoch", "loss", "step"} <= r.keys() for r in history)
        and all(isinstance(row, list) and len(row) == 3 for row in log)
        and all(isinstance(v, float) for v in losses)
    )
    if not fits:
        raise ValueError("its progress counters do not fit this run")
    return step, losses, history, log


def _epoch(run: _Run, epoch: int, on_epoch) -> None:
    """Train one epoch (from the step a resume starts at), then score it with ``on_epoch`` and log it."""
    run.model.train()
    done = run.step - epoch * steps_per_epoch(len(run.feats), run.args, run.world_size)
    loader = epoch_loader(run.feats, run.collate_fn, run.args, epoch, done, run.rank, run.world_size,
                          pin_memory=run.device.type == "cuda")
    micro = []
    for batch, weight in loader:
        micro.append((batch, weight))
        if len(micro) < run.args.grad_accum_steps:  # every global batch has exactly this many per process
            continue
        if run.step >= run.total:  # a fractional last epoch
            break
        _step(run, micro)
        micro = []
    _flush(run)
    record = {"epoch": epoch + 1, "loss": sum(run.epoch_losses) / max(1, len(run.epoch_losses))}
    run.epoch_losses = []
    if on_epoch is not None:
        run.model.eval()
        record.update(on_epoch(epoch + 1, run.model))
    run.history.append(record)
    run.curves.log(run.step, epoch_values(record))
    record["step"] = run.step


def _step(run: _Run, micro: list[tuple[Batch | None, float]]) -> None:
    """One optimizer step on this process's micro-batches of a global batch; checkpoints when due."""
    loss = _accumulate(run, micro)
    if run.world_size > 1:
        _sum_gradients(run)
        loss = run.accelerator.reduce(loss, "sum")
    run.accelerator.clip_grad_norm_(run.model.parameters(), run.args.max_grad_norm)
    lr = run.optimizer.param_groups[0]["lr"]
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    if run.after_step is not None:
        run.after_step(run.model)
    run.step += 1
    run.pending.append((run.step, loss, lr))
    run.bar.update(1)
    if len(run.pending) >= (SYNC_EVERY if run.device.type == "cuda" else 1):
        _flush(run)
    if run.ckpt is not None and run.step % run.args.checkpoint_every == 0 and run.step < run.total:
        _flush(run)
        _save(run)


def _accumulate(run: _Run, micro: list[tuple[Batch | None, float]]) -> torch.Tensor:
    """Forward/backward the micro-batches of one step, each loss scaled by its share of the global batch.

    Returns:
        The weighted loss sum: a float64 scalar on the device, not read here so the GPU is not waited for.
    """
    total = torch.zeros((), dtype=torch.float64, device=run.device)
    for batch, weight in micro:
        if batch is None:  # this process got no examples of a short last global batch
            continue
        autocast = torch.autocast(run.device.type, dtype=run.dtype) if run.dtype else contextlib.nullcontext()
        with autocast:
            loss = run.loss_fn(run.forward_model, to_device(batch, run.device))
            if run.args.l1 > 0:
                loss = loss + run.args.l1 * l1_penalty(run.model)
        # Accelerator(gradient_accumulation_steps=1, no fp16 scaler): backward is loss.backward(). A weight of
        # exactly 1 (one process, no accumulation, full batch) is skipped so the default run stays
        # byte-identical to the loop before accumulation existed.
        run.accelerator.backward(loss if weight == 1.0 else loss * weight)
        total += loss.detach().double() * weight
    return total


def _sum_gradients(run: _Run) -> None:
    """Sum the trainable parameters' gradients over processes with one flat all-reduce (the weights already
    make the sum the global batch's gradient); a gradient missing on every process stays None."""
    params = [p for p in run.model.parameters() if p.requires_grad]
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=run.device)
    has = run.accelerator.reduce(has, "max").tolist()
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
    flat = run.accelerator.reduce(flat, "sum")
    offset = 0
    for p, h in zip(params, has):
        p.grad = flat[offset : offset + p.numel()].view_as(p) if h else None
        offset += p.numel()


def _flush(run: _Run) -> None:
    """Read the pending step losses: stop on NaN/inf, else record them (epoch mean, curves, progress bar).

    Raises:
        PipelineError: a loss is NaN or infinite (names the step; lower the learning rate).
    """
    values = torch.stack([t for _, t, _ in run.pending]).tolist() if run.pending else []
    for (step, _, lr), value in zip(run.pending, values):
        if not math.isfinite(value):
            raise PipelineError(f"{run.desc}: loss is {value} at step {step - 1} (lower the learning rate)")
        run.epoch_losses.append(value)
        run.step_log.append([step, value, lr])
        run.curves.log(step, {"train/loss": value, "train/lr": lr})
    if values:
        run.bar.set_postfix(loss=f"{values[-1]:.4f}", refresh=False)
    run.pending.clear()


def _save(run: _Run) -> None:
    """Write the checkpoint (rank 0), with every process's RNG states (gathered, one row per process)."""
    local = checkpoint.rng_state(run.collate_fn)
    rng = run.accelerator.gather({k: v[None].to(run.device) for k, v in local.items()})
    if not run.accelerator.is_main_process:
        return
    hook = run.after_step
    checkpoint.save(run.ckpt, {
        "fingerprint": run.fingerprint, "step": run.step, "epoch_losses": run.epoch_losses,
        "history": run.history, "log": run.step_log, "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
        "rng": {k: v.cpu() for k, v in rng.items()},
        "hook": hook.state_dict() if hasattr(hook, "state_dict") and hasattr(hook, "load_state_dict") else None,
    })
