"""Turning rows into batches: dynamic padding, MLM masking and corpus encoding, batching.

Task-specific encodings live with their task (:mod:`pipeline.tasks`).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from pipeline.core.errors import PipelineError

Feature = dict[str, list[int]]
Batch = dict[str, torch.Tensor]


def encode_text(rows: list[dict], tokenizer, max_length: int) -> list[Feature]:
    """Tokenise ``text`` rows for masked-LM training (special tokens added, truncated)."""
    enc = tokenizer([r["text"] for r in rows], truncation=True, max_length=max_length)
    return [{k: enc[k][i] for k in ("input_ids", "attention_mask")} for i in range(len(rows))]


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
    feats: list[Feature], batch_size: int, collate_fn, shuffle: bool = False, seed: int = 0
) -> Iterator[Batch]:
    """Yield collated batches; shuffled with a generator seeded by ``seed`` when asked."""
    order = list(range(len(feats)))
    if shuffle:
        order = torch.randperm(len(feats), generator=torch.Generator().manual_seed(seed)).tolist()
    for start in range(0, len(order), batch_size):
        yield collate_fn([feats[i] for i in order[start : start + batch_size]])
