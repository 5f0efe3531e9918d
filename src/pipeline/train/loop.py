"""The one training loop every training stage uses (pretrain, fine-tune, teacher, distill, pruning while training).

One optimizer step consumes ``batch_size * grad_accum_steps * world_size`` examples: a *global batch* cut
from the epoch's shuffled order and split into equal contiguous pieces, one per micro-batch and process.
Each piece's loss is weighted by its share of the global batch and the processes' gradients are summed
with one all-reduce, so the update equals a single process on the whole global batch (exactly for
per-example mean losses; padded pieces of a short last batch keep their true weights).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import shutil
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from pipeline.config.args import TrainArgs
from pipeline.core.errors import PipelineError
from pipeline.core.files import write_json
from pipeline.core.runtime import autocast_dtype, is_main, world
from pipeline.data.features import Batch, Feature
from pipeline.models import families

LossFn = Callable[[torch.nn.Module, Batch], torch.Tensor]

# Sorting by length happens within mega-batches of this many global batches: batches get similar lengths
# while the data order stays shuffled (the grouping of the HF Trainer's length-grouped sampler).
MEGABATCH = 50
SYNC_EVERY = 32


@dataclass
class RunFiles:
    """What a training run writes besides its artifact (each optional)."""

    log_dir: Path | None = None
    """dvclive directory for the curves: ``plots/metrics/train/{loss,lr,epoch_loss}.tsv`` and
    ``plots/metrics/eval/<metric>.tsv`` (column ``step`` = optimizer steps done). No ``metrics.json``
    summary: every file under ``metrics/train`` is a plot (dvc.yaml declares the directory)."""
    checkpoint: Path | None = None
    """Resumable checkpoint directory, used when ``TrainArgs.checkpoint_every > 0``."""

    @classmethod
    def beside(cls, out: str | os.PathLike, log_dir: str | os.PathLike | None = None) -> RunFiles:
        """Files of a stage writing ``out``: the checkpoint is ``<out>.ckpt``, beside (not inside) it."""
        out = Path(out)
        return cls(Path(log_dir) if log_dir else None, out.with_name(out.name + ".ckpt"))

    def done(self) -> None:
        """After the artifact is written (rank 0; other ranks never write): remove the checkpoint, and give a
        run that logged no curves (a pruning method that does not train) an empty list of step records, a
        valid empty plot, so the stage's declared curves directory exists."""
        if not is_main():
            return
        if self.checkpoint is not None:
            shutil.rmtree(self.checkpoint, ignore_errors=True)
        if self.log_dir is not None and not self.log_dir.exists():
            write_json(self.log_dir / "steps.json", [])


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
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def global_batch(args: TrainArgs, world_size: int | None = None) -> int:
    """Examples per optimizer step: ``batch_size * grad_accum_steps * world_size``."""
    return args.batch_size * args.grad_accum_steps * (world()[1] if world_size is None else world_size)


def total_steps(num_examples: int, args: TrainArgs, world_size: int | None = None) -> int:
    """Optimizer steps of a run: ``ceil(epochs * ceil(num_examples / global_batch))`` (at least 1)."""
    return max(1, math.ceil(args.epochs * math.ceil(num_examples / global_batch(args, world_size))))


def epoch_order(lengths: list[int], args: TrainArgs, epoch: int, world_size: int = 1) -> list[int]:
    """Every example index once, in this epoch's order (seeded by ``args.seed + epoch``).

    With ``group_by_length`` the shuffled order is cut into mega-batches of ``MEGABATCH`` global batches
    and each is sorted by decreasing length (stable), so consecutive batches hold similar lengths.
    """
    order = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(args.seed + epoch)).tolist()
    if not args.group_by_length:
        return order
    size = MEGABATCH * global_batch(args, world_size)
    return [i for s in range(0, len(order), size) for i in sorted(order[s : s + size], key=lambda i: -lengths[i])]


def split_pieces(chunk: list[int], pieces: int) -> list[list[int]]:
    """``chunk`` cut into ``pieces`` contiguous parts whose sizes differ by at most one (some may be empty)."""
    bounds = [round(i * len(chunk) / pieces) for i in range(pieces + 1)]
    return [chunk[bounds[i] : bounds[i + 1]] for i in range(pieces)]


def rank_microbatches(order: list[int], args: TrainArgs, rank: int, world_size: int) -> list[tuple[list[int], float]]:
    """This process's micro-batches of an epoch: ``(example indices, weight)``, ``grad_accum_steps`` per step.

    The weight is the piece's share of its global batch; the weights of one step sum to 1 over all processes.
    """
    k, size = args.grad_accum_steps, global_batch(args, world_size)
    out = []
    for start in range(0, len(order), size):
        chunk = order[start : start + size]
        pieces = split_pieces(chunk, k * world_size)[rank * k : (rank + 1) * k]
        out += [(p, len(p) / len(chunk)) for p in pieces]
    return out


class _Pieces(torch.utils.data.Dataset):
    """Collated micro-batches (for a DataLoader that collates in workers and pins memory)."""

    def __init__(self, feats, pieces, collate_fn, reseed: int | None, offset: int = 0):
        """``reseed``: per-batch seed base (None keeps the collator's own stream); ``offset``: index of
        ``pieces[0]`` in the epoch (micro-batches skipped on resume), so seeds do not shift."""
        self.feats, self.pieces, self.collate_fn, self.reseed, self.offset = feats, pieces, collate_fn, reseed, offset

    def __len__(self):
        return len(self.pieces)

    def __getitem__(self, i):
        idx, weight = self.pieces[i]
        if not idx:
            return None, weight
        gen = getattr(self.collate_fn, "generator", None)
        if self.reseed is not None and gen is not None:
            # Worker processes hold copies of a stateful collator (MLM masking): seed each batch from its
            # position instead, so masks are deterministic and differ between batches for any worker count.
            gen.manual_seed((self.reseed * 1_000_003 + self.offset + i) % 2**63)
        return self.collate_fn([self.feats[j] for j in idx]), weight


def _all_reduce_grads(params: list[torch.nn.Parameter]) -> None:
    """Sum gradients over processes with one flat all-reduce; a gradient missing everywhere stays None."""
    dist = torch.distributed
    device = params[0].device
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=device)
    dist.all_reduce(has, op=dist.ReduceOp.MAX)
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for p, h in zip(params, has.tolist()):
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone() if h else None
        offset += n


def _fingerprint(args: TrainArgs, n: int, world_size: int, desc: str) -> str:
    """What a checkpoint must match to be resumed (settings that do not change results are left out)."""
    keep = {k: v for k, v in asdict(args).items() if k not in ("checkpoint_every", "compile")}
    raw = json.dumps([keep, n, world_size, desc], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()


def _rng_state(collate_fn) -> dict:
    gen = getattr(collate_fn, "generator", None)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "collate": gen.get_state() if isinstance(gen, torch.Generator) else None,
    }


def _set_rng_state(state: dict, collate_fn) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if state["collate"] is not None:
        collate_fn.generator.set_state(state["collate"])


def _gather(obj) -> list:
    """``obj`` from every process (a one-element list for a single process)."""
    if world()[1] == 1:
        return [obj]
    out = [None] * world()[1]
    torch.distributed.all_gather_object(out, obj)
    return out


class _Curves:
    """dvclive logging on rank 0 (a no-op elsewhere or without a directory).

    No timestamps are written, so the same run gives the same files (they are git-tracked outputs).
    ``log_metric`` appends to the TSV files at once, so a killed run keeps its curves up to the kill.
    """

    def __init__(self, log_dir: Path | None):
        self.live = None
        if log_dir is not None and is_main():
            from dvclive import Live

            self.live = Live(dir=str(log_dir), dvcyaml=False, save_dvc_exp=False, report=None)

    def log(self, step: int, values: dict[str, float]) -> None:
        if self.live is None:
            return
        self.live.step = step
        for name, value in values.items():
            self.live.log_metric(name, value)


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
        loss_fn: ``(model, batch) -> scalar loss`` (a per-example mean); defaults to the model's own loss.
            It receives the compiled model when ``args.compile``.
        after_step: called after every optimiser step (e.g. to re-apply pruning masks). With checkpoints
            it must be a plain function (stateless) or have ``state_dict``/``load_state_dict``.
        on_epoch: called after each epoch with ``(epoch, model)``; its dict joins the history and the
            ``eval/`` curves. Runs on every process (each needs the result); only rank 0 logs.
        files: dvclive directory and checkpoint directory (both optional).

    Returns:
        One dict per epoch: ``{"epoch", "loss", **on_epoch(...)}``.

    Raises:
        PipelineError: when the loss becomes NaN/inf (names the step), instead of saving garbage.
    """
    if not feats:
        raise PipelineError(f"{desc}: no training features")
    files = files or RunFiles()
    rank, world_size = world()
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    if world_size > 1:  # every process starts from rank 0's weights
        for tensor in [*model.parameters(), *model.buffers()]:
            torch.distributed.broadcast(tensor.data, 0)
    total = total_steps(len(feats), args, world_size)
    optimizer = torch.optim.AdamW(
        param_groups(model, args.weight_decay), lr=args.lr, fused=device.type == "cuda"
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, linear_schedule(int(args.warmup_ratio * total), total)
    )
    dtype = autocast_dtype(args.precision, device)
    forward_model = torch.compile(model, dynamic=True) if args.compile else model
    lengths = [len(f["input_ids"]) for f in feats]
    history: list[dict] = []
    step_log: list[tuple[int, float, float]] = []
    step, epoch_losses = 0, []
    ckpt = files.checkpoint if args.checkpoint_every > 0 else None
    if ckpt is not None and not _resumable(after_step):
        raise PipelineError(
            f"{desc}: checkpoint_every > 0 but the training hook {type(after_step).__name__} cannot save its "
            "state (a resume would restart its schedule); set checkpoint_every: 0"
        )
    fingerprint = _fingerprint(args, len(feats), world_size, desc)
    if ckpt is not None and (ckpt / "state.pt").exists():
        state = torch.load(ckpt / "state.pt", map_location="cpu", weights_only=False)  # our own file
        if state["fingerprint"] == fingerprint:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            step, epoch_losses, history, step_log = state["step"], state["epoch_losses"], state["history"], state["log"]
            _set_rng_state(state["rng"][rank], collate_fn)
            if state["hook"] is not None:
                after_step.load_state_dict(state["hook"])
            print(f"{desc}: resumed from {ckpt} at step {step}", flush=True)
        elif is_main():
            print(f"{desc}: ignoring {ckpt} (written by other settings)", flush=True)
    if ckpt is not None and len(set(_gather(step))) > 1:  # every process reads the checkpoint itself
        raise PipelineError(f"{desc}: {ckpt} is not visible to every process (it needs a shared filesystem)")
    curves = _Curves(files.log_dir)
    for s, loss_value, lr in step_log:  # curves of the steps before a resume, as first logged
        curves.log(s, {"train/loss": loss_value, "train/lr": lr})
    for record in history:
        curves.log(record["step"], _epoch_values(record))
    steps_per_epoch = math.ceil(len(feats) / global_batch(args, world_size))
    # Reading a loss (.item()) waits for the GPU; on CUDA the step losses are read SYNC_EVERY steps at a
    # time so the CPU keeps queueing work (a NaN is then reported a few steps late, still before saving).
    sync_every = SYNC_EVERY if device.type == "cuda" else 1
    pending: list[tuple[int, torch.Tensor, float]] = []

    def flush() -> None:
        values = torch.stack([t for _, t, _ in pending]).tolist() if pending else []
        for (s, _, lr), value in zip(pending, values):
            if not math.isfinite(value):
                bar.close()  # end the progress line so the error gets a line of its own
                raise PipelineError(f"{desc}: loss is {value} at step {s - 1} (lower the learning rate)")
            epoch_losses.append(value)
            step_log.append((s, value, lr))
            curves.log(s, {"train/loss": value, "train/lr": lr})
        if values:
            bar.set_postfix(loss=f"{values[-1]:.4f}", refresh=False)
        pending.clear()

    bar = tqdm(total=total, initial=step, desc=desc, mininterval=2.0, dynamic_ncols=True, disable=not is_main())
    for epoch in range(len(history), math.ceil(args.epochs)):
        model.train()
        pieces = rank_microbatches(epoch_order(lengths, args, epoch, world_size), args, rank, world_size)
        skip = (step - epoch * steps_per_epoch) * args.grad_accum_steps  # steps done before a resume
        loader = torch.utils.data.DataLoader(
            _Pieces(feats, pieces[skip:], collate_fn,
                    (args.seed + epoch) * 1_000_003 + rank if args.num_workers else None, skip),
            batch_size=None, shuffle=False, num_workers=args.num_workers, pin_memory=device.type == "cuda",
            # its own generator: the loader draws a worker seed per epoch, which must not advance the
            # global RNG (dropout) - the default run stays byte-identical to the pre-DataLoader loop
            generator=torch.Generator().manual_seed(args.seed + epoch),
        )
        micro = []
        for batch, weight in loader:
            micro.append((batch, weight))
            if len(micro) < args.grad_accum_steps:  # every global batch has exactly this many per process
                continue
            if step >= total:
                break
            loss = _accumulate(forward_model, model, micro, loss_fn, args, device, dtype)
            micro = []
            if world_size > 1:
                _all_reduce_grads(params)
                torch.distributed.all_reduce(loss)
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if after_step is not None:
                after_step(model)
            step += 1
            pending.append((step, loss, lr))
            bar.update(1)
            if len(pending) >= sync_every:
                flush()
            if ckpt is not None and step % args.checkpoint_every == 0 and step < total:
                flush()
                _save_checkpoint(ckpt, model, optimizer, scheduler, after_step, collate_fn, fingerprint,
                                 {"step": step, "epoch_losses": epoch_losses, "history": history, "log": step_log})
        flush()
        record = {"epoch": epoch + 1, "loss": sum(epoch_losses) / max(1, len(epoch_losses))}
        epoch_losses = []
        if on_epoch is not None:
            model.eval()
            record.update(on_epoch(epoch + 1, model))
        history.append(record)
        curves.log(step, _epoch_values(record))
        record["step"] = step
    bar.close()
    model.eval()
    return [{k: v for k, v in r.items() if k != "step"} for r in history]


def _resumable(hook) -> bool:
    """A hook resumes exactly if it is a plain function (stateless, e.g. re-applying fixed masks) or saves state."""
    return hook is None or isinstance(hook, types.FunctionType) or (
        hasattr(hook, "state_dict") and hasattr(hook, "load_state_dict"))


def _epoch_values(record: dict) -> dict[str, float]:
    """An epoch record as curves: ``train/epoch_loss`` and ``eval/<metric>``."""
    values = {"train/epoch_loss": record["loss"]}
    values.update({f"eval/{k}": v for k, v in record.items() if k not in ("epoch", "loss", "step")})
    return values


def _accumulate(forward_model, model, micro, loss_fn, args, device, dtype) -> torch.Tensor:
    """Forward/backward the micro-batches of one step, each weighted by its share; the weighted loss sum
    (a float64 scalar on ``device``, not read here so the GPU is not waited for)."""
    total = torch.zeros((), dtype=torch.float64, device=device)
    for batch, weight in micro:
        if batch is None:  # this process got no examples of a short last global batch
            continue
        autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
        with autocast:
            loss = loss_fn(forward_model, to_device(batch, device))
            if args.l1 > 0:
                loss = loss + args.l1 * l1_penalty(model)
        # A weight of exactly 1 (one process, no accumulation, full batch) is skipped so the default run
        # stays byte-identical to the loop before accumulation existed.
        (loss if weight == 1.0 else loss * weight).backward()
        total += loss.detach().double() * weight
    return total


def _save_checkpoint(ckpt, model, optimizer, scheduler, hook, collate_fn, fingerprint, progress) -> None:
    """Atomically replace ``ckpt/state.pt`` (rank 0); every process contributes its RNG state."""
    rng = _gather(_rng_state(collate_fn))
    if not is_main():
        return
    ckpt.mkdir(parents=True, exist_ok=True)
    state = {
        "fingerprint": fingerprint, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "rng": rng,
        "hook": hook.state_dict() if hasattr(hook, "state_dict") and hasattr(hook, "load_state_dict") else None,
        **progress,
    }
    tmp = ckpt / "state.pt.tmp"
    torch.save(state, tmp)
    os.replace(tmp, ckpt / "state.pt")  # a kill mid-write leaves the previous checkpoint intact
