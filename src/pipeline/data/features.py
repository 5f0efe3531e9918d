"""Turning rows into batches: columnar features, dynamic padding, MLM masking and corpus encoding, batching.

Task-specific encodings live with their task (:mod:`pipeline.tasks`); they tokenise in batches of
:data:`ENCODE_BATCH` rows and keep the result in :class:`Features`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch

from pipeline.core.errors import PipelineError

Feature = dict[str, list[int]]
Batch = dict[str, torch.Tensor]

ENCODE_BATCH = 4096
"""Rows per tokenizer call when encoding a split: large enough for the fast tokenizer's batch speed, small
enough that its Python lists (about 1 KB per short example) never hold a whole split at once."""


class Features(Sequence):
    """A split's model inputs held column by column: one feature per example (or per QA window).

    Why numpy and not a Python list of dicts or an Arrow table: a list of per-example Python lists costs
    about 50 bytes per token (the 392,702 MNLI pairs took 20 GB); here a token costs 4 bytes per column
    (int32 for the token ids; no vocabulary reaches 2**31), the columns are built batch by batch and nothing
    is written to disk, so there is no cache to go stale (an Arrow file would only pay off shared between
    processes, which re-encoding in each costs less than coordinating).

    Layout: every per-token column (``input_ids``, ``attention_mask``, ``token_type_ids``) is one flat
    ``int32`` array of all features' tokens concatenated; feature ``i`` is ``[offsets[i], offsets[i + 1])`` of
    each (all per-token columns share the lengths). Per-feature columns (``labels``, ``start_positions``,
    ``end_positions``) are ``(N,)`` arrays (int64; float64 for regression labels).

    The sequence protocol is that of the former ``list[Feature]``: ``len(feats)``; ``feats[i]`` is one
    feature, a dict in the tokenizer's key order with per-token values as Python lists of ints and
    per-feature values as Python ints/floats (so :func:`collate` and every collate function work unchanged);
    ``feats[a:b]`` is a :class:`Features` view sharing the arrays (other steps copy); iteration yields the
    features in order. ``lengths`` gives every feature's token count without building the dicts.
    """

    def __init__(self, tokens: dict[str, np.ndarray], offsets: np.ndarray, values: dict[str, np.ndarray],
                 keys: tuple[str, ...]):
        """Args: ``tokens``: per-token columns (flat); ``offsets``: ``(N + 1,)`` int64 positions into them;
        ``values``: per-feature columns ``(N,)``; ``keys``: every column name, in feature key order."""
        self.tokens, self.offsets, self.values, self.keys = tokens, offsets, values, keys

    @classmethod
    def from_batches(cls, parts: Iterable[dict[str, list]], value_dtypes: dict[str, type]) -> Features:
        """Columns built from column-wise batches (a tokenizer's output plus per-feature lists).

        Args:
            parts: dicts ``{column: [one entry per feature]}``, all with the same keys; per-token entries
                are lists of ints.
            value_dtypes: the per-feature columns and their numpy dtypes; the other columns are per-token.
        """
        tokens: dict[str, list[np.ndarray]] = {}
        values: dict[str, list[np.ndarray]] = {}
        lengths: list[np.ndarray] = []
        keys: tuple[str, ...] = ()
        for part in parts:
            keys = keys or tuple(part)
            ids = part["input_ids"]
            size = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
            lengths.append(size)
            for key in keys:
                if key in value_dtypes:
                    values.setdefault(key, []).append(np.asarray(part[key], dtype=value_dtypes[key]))
                else:  # count= makes a column whose lengths differ from input_ids' an error
                    flat = np.fromiter(itertools.chain.from_iterable(part[key]), np.int32, int(size.sum()))
                    tokens.setdefault(key, []).append(flat)
        offsets = np.zeros(sum(len(n) for n in lengths) + 1, dtype=np.int64)
        if lengths:
            np.cumsum(np.concatenate(lengths), out=offsets[1:])
        return cls({k: np.concatenate(v) for k, v in tokens.items()}, offsets,
                   {k: np.concatenate(v) for k, v in values.items()}, keys)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        """Tokens of every feature (``len(feats[i]["input_ids"])``), ``(N,)`` int64, without building features."""
        return np.diff(self.offsets)

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return self.take(range(start, stop, step))
            stop = max(start, stop)
            return Features(self.tokens, self.offsets[start : stop + 1],
                            {k: v[start:stop] for k, v in self.values.items()}, self.keys)
        i = int(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"feature {index} of {len(self)}")
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return {k: self.tokens[k][a:b].tolist() if k in self.tokens else self.values[k][i].item() for k in self.keys}

    def __iter__(self) -> Iterator[Feature]:
        return (self[i] for i in range(len(self)))

    def take(self, indices: Iterable[int]) -> Features:
        """A compact copy holding the features at ``indices``, in that order."""
        idx = np.asarray(list(indices), dtype=np.int64)
        starts, ends = self.offsets[idx], self.offsets[idx + 1]
        offsets = np.concatenate([[0], np.cumsum(ends - starts)]).astype(np.int64)
        gather = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)] or [np.zeros(0, np.int64)])
        return Features({k: v[gather] for k, v in self.tokens.items()}, offsets,
                        {k: v[idx] for k, v in self.values.items()}, self.keys)


def encode_text(rows: list[dict], tokenizer, max_length: int, batch_size: int = ENCODE_BATCH) -> Features:
    """Tokenise ``text`` rows for masked-LM training (special tokens added, truncated), ``batch_size`` rows per
    tokenizer call: ``input_ids`` and ``attention_mask`` per row."""
    def parts():
        for start in range(0, len(rows), batch_size):
            enc = tokenizer([r["text"] for r in rows[start : start + batch_size]], truncation=True,
                            max_length=max_length)
            yield {k: enc[k] for k in ("input_ids", "attention_mask")}

    return Features.from_batches(parts(), {})


def feature_lengths(feats) -> list[int]:
    """Tokens of every feature: :attr:`Features.lengths` of a columnar store (no feature built), else
    ``len(f["input_ids"])`` of each feature of a plain sequence."""
    if isinstance(feats, Features):
        return feats.lengths.tolist()
    return [len(f["input_ids"]) for f in feats]


def collate(feats: list[Feature], pad_id: int) -> Batch:
    """Pad a list of features to the longest in the batch: ``(B, T)`` long tensors (labels ``(B,)``, float
    for regression)."""
    longest = max(len(f["input_ids"]) for f in feats)
    batch: Batch = {}
    for key in feats[0]:
        values = [f[key] for f in feats]
        if isinstance(values[0], list):
            fill = pad_id if key == "input_ids" else (-100 if key == "labels" else 0)
            values = [v + [fill] * (longest - len(v)) for v in values]
        batch[key] = torch.tensor(values)
    return batch


def mask_tokens(
    input_ids: torch.Tensor,
    special: torch.Tensor,
    mask_id: int,
    vocab_size: int,
    probability: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: pick ``probability`` of the non-special tokens; 80% -> [MASK], 10% random, 10% kept.

    Args:
        input_ids: ``(B, T)`` token ids.
        special: ``(B, T)`` bool, True where a token must never be masked ([CLS], [SEP], padding).
        generator: the only source of randomness, so masking is reproducible.

    Returns:
        ``(inputs, labels)``: masked inputs ``(B, T)`` and labels ``(B, T)`` with -100 where not predicted.
    """
    probs = torch.full(input_ids.shape, probability)
    probs.masked_fill_(special, 0.0)
    chosen = torch.bernoulli(probs, generator=generator).bool()
    labels = input_ids.masked_fill(~chosen, -100)
    inputs = input_ids.clone()
    to_mask = torch.bernoulli(torch.full(input_ids.shape, 0.8), generator=generator).bool() & chosen
    inputs[to_mask] = mask_id
    to_random = torch.bernoulli(torch.full(input_ids.shape, 0.5), generator=generator).bool()
    to_random &= chosen & ~to_mask
    inputs[to_random] = torch.randint(vocab_size, input_ids.shape, generator=generator)[to_random]
    return inputs, labels


class MlmCollator:
    """Pads a batch and applies :func:`mask_tokens` with its own seeded generator."""

    def __init__(self, tokenizer, probability: float, seed: int):
        if tokenizer.mask_token_id is None or tokenizer.pad_token_id is None:
            raise PipelineError(f"the tokenizer ({type(tokenizer).__name__}) has no mask or no pad token: masked-LM "
                                "training needs both")
        self.pad_id = tokenizer.pad_token_id
        self.mask_id = tokenizer.mask_token_id
        self.vocab_size = len(tokenizer)
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)))
        self.probability = probability
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, feats: list[Feature]) -> Batch:
        batch = collate(feats, self.pad_id)
        special = torch.isin(batch["input_ids"], self.special_ids)
        batch["input_ids"], batch["labels"] = mask_tokens(
            batch["input_ids"], special, self.mask_id, self.vocab_size, self.probability, self.generator
        )
        return batch


def batches(
    feats: Sequence[Feature], batch_size: int, collate_fn, shuffle: bool = False, seed: int = 0
) -> Iterator[Batch]:
    """Yield collated batches; shuffled with a generator seeded by ``seed`` when asked."""
    order = list(range(len(feats)))
    if shuffle:
        order = torch.randperm(len(feats), generator=torch.Generator().manual_seed(seed)).tolist()
    for start in range(0, len(order), batch_size):
        yield collate_fn([feats[i] for i in order[start : start + batch_size]])
