"""The one training loop every training stage uses (pretrain, fine-tune, teacher, distill, pruning while training).

``fit`` reads as its steps: :func:`_setup` (optimizer, schedule, processes), :func:`_resume` (checkpoint),
:func:`_epoch` (micro-batches -> :func:`_step`), :func:`_save` (checkpoint). Each optimizer step consumes a
global batch of ``batch_size * grad_accum_steps * world_size`` examples (see :mod:`pipeline.train.batches`),
at most ``TrainArgs.max_steps`` steps in all.

**Loss items.** A loss is a mean over *items*: examples for classification, QA windows and logit KD, labelled
tokens for masked-LM (``labels != -100``), real tokens for hidden-state KD, real query/key pairs for attention
KD. Each micro-batch's loss (each term's, for a loss of several terms) is weighted by its share of the global
batch's items of that term, counted before the forward pass and summed over the processes once per step
(transformers' ``num_items_in_batch``, its issue 34191). So the update is a single process's on the whole
global batch for any batch size / accumulation / process split, token-averaged losses included (weighting
by examples gave a 119% gradient difference for masked-LM between batch 8 x 1 and batch 4 x 2). A step of
one micro-batch on one process has weight exactly 1.0: its loss is used as it is, bit for bit.

**Several processes: DDP through accelerate.** ``Accelerator.prepare`` wraps the model *and its loss*
(:class:`_Objective`, so DDP's forward covers every parameter the loss uses, e.g. the KD projection) in
``DistributedDataParallel`` (``find_unused_parameters=True``: pruning methods and heads may leave parameters
without a gradient, as the Trainer does for transformers models). Gradients are all-reduced in buckets that
overlap the backward, once per step: every micro-batch but the last runs under ``accelerator.no_sync``.
DDP *averages* the processes' gradients, so each piece's loss is scaled by ``world_size * its weight``; the
result equals one process on the same global batch to float rounding (the 2-process gloo test allows
``atol=1e-5, rtol=1e-5`` on the weights after two steps). A short last global batch is *padded*: a process
whose piece is empty trains on the global batch's first example with zero weight (DDP needs every process to
run every backward), so no example is dropped and the update is unchanged. One process: no wrapper, no
collective.

What else of ``accelerate`` is used: the process group facts (rank, process count), collectives (item
counts, loss sums, gathering RNG states), ``backward`` and ``clip_grad_norm_``. Not used, because it would
change the results:

- ``accumulate()`` / ``gradient_accumulation_steps``: it divides each loss by the step count, not by items.
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
- ``save_state``/``load_state``: they pickle (RNG states); see :mod:`pipeline.train.checkpoint`. Checkpoints
  hold the unwrapped model's ``state_dict``.
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
from accelerate.utils import DistributedDataParallelKwargs, DistributedType, GradientAccumulationPlugin
from tqdm.auto import tqdm

from pipeline.config.args import TrainArgs
from pipeline.core.errors import PipelineError
from pipeline.core.profile import model_time
from pipeline.core.runtime import autocast_dtype, loader_workers
from pipeline.data.features import Batch, Feature
from pipeline.models import families
from pipeline.train import checkpoint
from pipeline.train.batches import (MEGABATCH, epoch_loader, epoch_order, global_batch, rank_microbatches,
                                    steps_per_epoch, total_steps)
from pipeline.train.run_files import Curves, RunFiles, epoch_values

__all__ = ["LossFn", "default_items", "default_loss", "fit", "l1_penalty", "linear_schedule", "loss_items",
           "param_groups"]

LossFn = Callable[[torch.nn.Module, Batch], "torch.Tensor | dict[str, torch.Tensor]"]
"""``(model, batch) -> loss``: a scalar mean over the batch's loss items, or ``{term: scalar mean}`` for a loss
of several terms averaged over different items (the loss is their sum). It may carry an ``items`` attribute,
``(batch) -> {term: count}`` with the same terms (CPU batch, before the forward pass); without one the items
are :func:`default_items`."""

# Reading a loss (.item()) waits for the GPU; on CUDA the step losses are read SYNC_EVERY steps at a time so
# the CPU keeps queueing work (a NaN is then reported a few steps late, still before saving).
SYNC_EVERY = 32


def default_loss(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """The model's own loss (cross-entropy for heads given ``labels``/``start_positions``)."""
    return model(**batch).loss


def default_items(batch: Batch) -> dict[str, int]:
    """The items a plain loss of ``batch`` averages over: ``{"loss": count}``, the labelled tokens
    (``labels != -100``, the ``ignore_index`` of transformers' masked-LM loss) when ``labels`` is per token
    ``(B, T)``, else the examples ``B`` (classification, regression, QA windows)."""
    labels = batch.get("labels")
    if labels is not None and labels.ndim == 2:
        return {"loss": int((labels != -100).sum())}
    return {"loss": len(batch["input_ids"])}


def loss_items(loss_fn: LossFn, batch: Batch) -> dict[str, int]:
    """``loss_fn.items(batch)`` when the loss function has one, else :func:`default_items`."""
    counter = getattr(loss_fn, "items", None)
    return default_items(batch) if counter is None else counter(batch)


class _Objective(torch.nn.Module):
    """The model and its loss as one module: ``forward(batch) -> {term: scalar mean}`` (the L1 penalty joins
    the first term). DDP wraps this, not the bare model, so its forward covers every parameter the loss uses
    (a KD projection called outside the model's forward included) and its reducer sees the loss."""

    def __init__(self, model: torch.nn.Module, forward_model: torch.nn.Module, loss_fn: LossFn, l1: float):
        super().__init__()
        self.model = model
        object.__setattr__(self, "forward_model", forward_model)  # the compiled wrapper: not a second submodule
        self.loss_fn, self.l1 = loss_fn, l1

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        out = self.loss_fn(self.forward_model, batch)
        terms = dict(out) if isinstance(out, dict) else {"loss": out}
        if self.l1 > 0:
            first = next(iter(terms))
            terms[first] = terms[first] + self.l1 * l1_penalty(self.model)
        return terms


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
    objective: torch.nn.Module  # :class:`_Objective` (the loss of ``model`` or its compiled wrapper); DDP-wrapped
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
    workers: int  # DataLoader worker processes (TrainArgs.num_workers resolved for the device)
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
        loss_fn: ``(model, batch) -> loss``, a mean over loss items or a dict of such terms with an ``items``
            counter (:data:`LossFn`); defaults to the model's own loss. Gets the compiled model with ``compile``.
        after_step: called after every optimiser step (e.g. to re-apply pruning masks). With checkpoints
            it must be a plain function (stateless) or have ``state_dict``/``load_state_dict`` (tensors and
            JSON values only).
        on_epoch: called after each epoch with ``(epoch, model)``; its dict joins the history and the
            ``eval/`` curves. Runs on every process (each needs the result); only rank 0 logs.
        files: dvclive directory and checkpoint directory (both optional); the curves are staged until
            ``files.done()``.

    Returns:
        One dict per epoch run: ``{"epoch", "loss", **on_epoch(...)}``; with ``args.max_steps`` the epochs
        stop where the steps do (the last one partial, scored by ``on_epoch`` as usual).

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
            if run.step >= run.total:  # max_steps reached (without it, every epoch has steps)
                break
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
    objective = _Objective(model, torch.compile(model, dynamic=True) if args.compile else model, loss_fn, args.l1)
    if accelerator.num_processes > 1:  # DDP; its constructor starts every process from rank 0's weights
        objective = accelerator.prepare(objective)
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
        model=model, objective=objective, feats=feats, collate_fn=collate_fn, args=args, device=device, desc=desc,
        loss_fn=loss_fn, after_step=after_step, accelerator=accelerator, optimizer=optimizer, scheduler=scheduler,
        dtype=autocast_dtype(args.precision, device), workers=loader_workers(args.num_workers, device),
        total=total, ckpt=ckpt,
        fingerprint=checkpoint.fingerprint(args, len(feats), accelerator.num_processes, desc),
    )


def _accelerator(desc: str) -> Accelerator:
    """The process's Accelerator with nothing of its own that changes numerics: no mixed precision and no
    loss division for accumulation, whatever ``accelerate launch`` put in the environment
    (``ACCELERATE_MIXED_PRECISION``, ``ACCELERATE_GRADIENT_ACCUMULATION_STEPS``); DDP finds unused parameters.

    Raises:
        PipelineError: launched with DeepSpeed, FSDP, Megatron or XLA (this loop is plain data parallel).
    """
    one_step = GradientAccumulationPlugin(num_steps=1)
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    accelerator = Accelerator(mixed_precision="no", gradient_accumulation_plugin=one_step, kwargs_handlers=[ddp])
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
                          pin_memory=run.device.type == "cuda", num_workers=run.workers)
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
    with model_time(run.device):  # the rehearsal's profiler (pipeline.core.profile); off: a no-op
        loss = _accumulate(run, micro)
    if run.world_size > 1:
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
    """Forward/backward the micro-batches of one step, each loss term scaled by its share of the global batch's
    items of that term (:func:`_weights`); with DDP only the last backward all-reduces the gradients.

    Returns:
        This process's part of the step's loss: a float64 scalar on the device, not read here so the GPU is
        not waited for.

    Raises:
        ValueError: the loss function's terms are not those its ``items`` counted.
    """
    counts = [{} if batch is None else _piece_items(run, batch, share) for batch, share in micro]
    weights = _weights(run, counts)
    total = torch.zeros((), dtype=torch.float64, device=run.device)
    for i, (batch, _) in enumerate(micro):
        if batch is None:  # one process: a piece of a short last global batch that got no examples
            continue
        last = i == len(micro) - 1
        sync = contextlib.nullcontext() if last or run.world_size == 1 else run.accelerator.no_sync(run.objective)
        autocast = torch.autocast(run.device.type, dtype=run.dtype) if run.dtype else contextlib.nullcontext()
        with sync:
            with autocast:
                terms = run.objective(to_device(batch, run.device))
            if terms.keys() != counts[i].keys():
                raise ValueError(f"{run.desc}: the loss returned terms {sorted(terms)} but counted items of "
                                 f"{sorted(counts[i])}")
            loss, logged = None, []
            for name, value in terms.items():
                weight, items = weights[i][name], counts[i][name]
                part = _weighted(value, weight, items)
                loss = part if loss is None else loss + part
                logged += [value.detach().double() * weight] if items else []
            # weights of exactly 1: the loss as it is (bit for bit the loss the loop logged before items)
            whole = all(isinstance(w, float) and w == 1.0 for w in weights[i].values())
            total += loss.detach().double() if whole else sum(logged)
            # Accelerator(gradient_accumulation_steps=1, no fp16 scaler): backward is loss.backward().
            run.accelerator.backward(loss)
    return total / run.world_size if run.world_size > 1 else total


def _piece_items(run: _Run, batch: Batch, share: float) -> dict[str, int]:
    """The loss items of one piece by term: counted by :func:`loss_items`, all 0 for a padding piece."""
    items = loss_items(run.loss_fn, batch)
    return {k: 0 for k in items} if share == 0.0 else items


def _weights(run: _Run, counts: list[dict[str, int]]) -> list[dict[str, float | torch.Tensor]]:
    """Each piece's weight per term: its items over the step's items of that term on all processes (one
    all-reduce of the counts), times the process count under DDP (which averages gradients).

    One process: Python floats, exactly 1.0 for a step of one micro-batch (its loss is used bit for bit);
    several: float64 device scalars (no wait for the GPU). A term without items in the whole step gets 0.
    """
    keys = list(dict.fromkeys(k for c in counts for k in c))
    local = [sum(c.get(k, 0) for c in counts) for k in keys]
    if run.world_size == 1:
        return [{k: c[k] / n if n else 0.0 for k, n in zip(keys, local) if k in c} for c in counts]
    steps = run.accelerator.reduce(torch.tensor(local, dtype=torch.float64, device=run.device), "sum")
    scale = run.world_size / steps.clamp(min=1)
    return [{k: c[k] * scale[j] for j, k in enumerate(keys) if k in c} for c in counts]


def _weighted(value: torch.Tensor, weight: float | torch.Tensor, items: int) -> torch.Tensor:
    """``value * weight``; a weight of exactly 1.0 leaves ``value`` as it is (bit for bit), and a term without
    items is a zero that still carries the graph (a masked-LM piece with no masked token has a NaN mean; a
    DDP padding piece must still run its backward)."""
    if items == 0:
        return torch.nan_to_num(value, nan=0.0, posinf=0.0, neginf=0.0) * 0.0
    if isinstance(weight, float) and weight == 1.0:
        return value
    return value * weight


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
