"""Which examples each optimizer step and each process trains on: the epoch's order, global batches, micro-batches.

One optimizer step consumes ``batch_size * grad_accum_steps * world_size`` examples: a *global batch* cut from
the epoch's shuffled order and split into equal contiguous pieces, one per micro-batch and process. Each piece
carries its share of the global batch's examples (0 marks a padding piece); the loop weights each piece's loss
by its share of the global batch's loss *items* (examples, or labelled tokens for masked-LM; see
:mod:`pipeline.train.loop`), so the update equals a single process on the whole global batch.

The pieces are cut here rather than by ``accelerate``'s prepared DataLoader: that one shards whole batches per
process and fills a short last batch by repeating examples, which changes the update (and the result) with the
process count; here a short last global batch keeps its true size and every piece its true weight.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from pipeline.config.args import TrainArgs
from pipeline.core.runtime import world
from pipeline.data.features import Batch, Feature, feature_lengths

# Sorting by length happens within mega-batches of this many global batches: batches get similar lengths
# while the data order stays shuffled (the grouping of the HF Trainer's length-grouped sampler).
MEGABATCH = 50


def global_batch(args: TrainArgs, world_size: int | None = None) -> int:
    """Examples per optimizer step: ``batch_size * grad_accum_steps * world_size`` (default: this run's)."""
    return args.batch_size * args.grad_accum_steps * (world()[1] if world_size is None else world_size)


def steps_per_epoch(num_examples: int, args: TrainArgs, world_size: int | None = None) -> int:
    """Optimizer steps of one full epoch: ``ceil(num_examples / global_batch)``."""
    return math.ceil(num_examples / global_batch(args, world_size))


def total_steps(num_examples: int, args: TrainArgs, world_size: int | None = None) -> int:
    """Optimizer steps of a run: ``ceil(epochs * steps_per_epoch)`` (at least 1), at most ``args.max_steps``
    when that is set (> 0)."""
    total = max(1, math.ceil(args.epochs * steps_per_epoch(num_examples, args, world_size)))
    return min(total, args.max_steps) if args.max_steps else total


def epoch_order(lengths: list[int], args: TrainArgs, epoch: int, world_size: int = 1) -> list[int]:
    """Every example index once, in this epoch's order (seeded by ``args.seed + epoch``).

    With ``group_by_length`` the shuffled order is cut into mega-batches of ``MEGABATCH`` global batches
    and each is sorted by decreasing length (stable), so consecutive batches hold similar lengths.

    Args:
        lengths: token count of every example (``len(input_ids)``).
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


def rank_microbatches(order: list[int], args: TrainArgs, rank: int, world_size: int,
                      pad: bool = False) -> list[tuple[list[int], float]]:
    """This process's micro-batches of an epoch: ``(example indices, weight)``, ``grad_accum_steps`` per step.

    Every process gets the same number of micro-batches, so no process waits for another at the step's
    gradient reduction. The weight is the piece's share of its global batch's examples; the weights of one
    step sum to 1 over all processes. A short last global batch can leave a piece empty: with ``pad`` it
    holds the global batch's first example with weight 0 instead (a padding piece: DDP needs every process
    to run every backward; the loop gives it no loss items, so it adds nothing to the update), else it stays
    empty (weight 0).
    """
    k, size = args.grad_accum_steps, global_batch(args, world_size)
    out = []
    for start in range(0, len(order), size):
        chunk = order[start : start + size]
        pieces = split_pieces(chunk, k * world_size)[rank * k : (rank + 1) * k]
        out += [(p, len(p) / len(chunk)) if p or not pad else (chunk[:1], 0.0) for p in pieces]
    return out


class MicroBatches(torch.utils.data.Dataset):
    """Collated micro-batches ``(batch or None, weight)``, for a DataLoader that collates in worker processes
    and pins memory. An empty piece gives ``(None, weight)``."""

    def __init__(self, feats: list[Feature], pieces: list[tuple[list[int], float]],
                 collate_fn: Callable[[list[Feature]], Batch], reseed: int | None, offset: int = 0):
        """``reseed``: per-batch seed base (None keeps the collator's own stream); ``offset``: index of
        ``pieces[0]`` in the epoch (micro-batches skipped on resume), so seeds do not shift."""
        self.feats, self.pieces, self.collate_fn, self.reseed, self.offset = feats, pieces, collate_fn, reseed, offset

    def __len__(self) -> int:
        return len(self.pieces)

    def __getitem__(self, i: int) -> tuple[Batch | None, float]:
        idx, weight = self.pieces[i]
        if not idx:
            return None, weight
        gen = getattr(self.collate_fn, "generator", None)
        if self.reseed is not None and gen is not None:
            # Worker processes hold copies of a stateful collator (MLM masking): seed each batch from its
            # position instead, so masks are deterministic and differ between batches for any worker count.
            gen.manual_seed((self.reseed * 1_000_003 + self.offset + i) % 2**63)
        return self.collate_fn([self.feats[j] for j in idx]), weight


def epoch_loader(feats: list[Feature], collate_fn, args: TrainArgs, epoch: int, done_steps: int, rank: int,
                 world_size: int, pin_memory: bool, num_workers: int) -> torch.utils.data.DataLoader:
    """The DataLoader of this process's micro-batches in ``epoch``, after the ``done_steps`` optimizer steps
    already taken in it (a resume), yielding ``(batch or None, weight)``; with several processes empty pieces
    become padding pieces (:func:`rank_microbatches`).

    ``num_workers > 0`` (resolved, see :func:`pipeline.core.runtime.loader_workers`) collates in worker
    processes; the stateful collator is then reseeded per batch from ``(seed + epoch, rank, position)``.
    """
    lengths = feature_lengths(feats)  # from the columnar offsets at scale, no feature built per epoch
    pieces = rank_microbatches(epoch_order(lengths, args, epoch, world_size), args, rank, world_size,
                               pad=world_size > 1)
    skip = done_steps * args.grad_accum_steps
    reseed = (args.seed + epoch) * 1_000_003 + rank if num_workers else None
    return torch.utils.data.DataLoader(
        MicroBatches(feats, pieces[skip:], collate_fn, reseed, skip),
        batch_size=None, shuffle=False, num_workers=num_workers, pin_memory=pin_memory,
        # its own generator: the loader draws a worker seed per epoch, which must not advance the
        # global RNG (dropout) - the default run stays byte-identical to the pre-DataLoader loop
        generator=torch.Generator().manual_seed(args.seed + epoch),
    )
