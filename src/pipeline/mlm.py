"""Masked-language-model training and held-out perplexity."""

from __future__ import annotations

import math

import torch

from pipeline.features import Feature, MlmCollator, batches, encode_text
from pipeline.params import MlmParams, TrainArgs
from pipeline.train import RunFiles, fit

# Masking of the held-out split is fixed so perplexities compare across models and runs.
EVAL_MASK_SEED = 1234


@torch.inference_mode()
def perplexity(model, feats: list[Feature], tokenizer, probability: float, device, batch_size: int = 64) -> float:
    """``exp`` of the mean masked-token cross-entropy over ``feats`` with a fixed masking pattern."""
    model.to(device).eval()
    collator = MlmCollator(tokenizer, probability, EVAL_MASK_SEED)
    total_loss, total_tokens = 0.0, 0
    for batch in batches(feats, batch_size, collator):
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        labels = batch["labels"]
        loss = torch.nn.functional.cross_entropy(
            logits.view(-1, logits.size(-1)).float(), labels.view(-1), ignore_index=-100, reduction="sum"
        )
        total_loss += loss.item()
        total_tokens += int((labels != -100).sum())
    return math.exp(total_loss / max(1, total_tokens))


def shard(rows: list[dict], index: int, count: int) -> list[dict]:
    """Every ``count``-th row starting at ``index`` (deterministic, disjoint shards)."""
    return rows[index::count]


def pretrain(model, train_rows, valid_rows, tokenizer, mlm: MlmParams, args: TrainArgs, device, desc: str,
             files: RunFiles | None = None) -> list[dict]:
    """Masked-LM training; returns per-epoch ``{"epoch", "loss", "perplexity"}`` on ``valid_rows``.

    ``files``: curves and checkpoint locations (:class:`pipeline.train.RunFiles`), both optional.
    """
    train_feats = encode_text(train_rows, tokenizer, mlm.max_length)
    valid_feats = encode_text(valid_rows, tokenizer, mlm.max_length)
    collator = MlmCollator(tokenizer, mlm.probability, args.seed)
    return fit(
        model,
        train_feats,
        collator,
        args,
        device,
        desc,
        on_epoch=lambda epoch, m: {"perplexity": perplexity(m, valid_feats, tokenizer, mlm.probability, device)},
        files=files,
    )
