"""Masked-language-model training and held-out perplexity."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline.config.args import TrainArgs, check_seed
from pipeline.core.errors import PipelineError
from pipeline.data.features import Feature, MlmCollator, batches, encode_text
from pipeline.data.io import read_split
from pipeline.models.structure import check_input_length
from pipeline.train.loop import fit
from pipeline.train.run_files import RunFiles


@dataclass
class MlmParams:
    """Masked-LM data settings."""

    max_length: int = 64
    """Longest training/held-out sequence in tokens (>= 8, at most the model's positions)."""
    probability: float = 0.15
    """Fraction of tokens selected for masking (80% [MASK], 10% random, 10% kept)."""
    num_shards: int = 1
    """The corpus is split into this many shards; each run trains on its own shard."""

    def __post_init__(self):
        if not 0 < self.probability < 1:
            raise ValueError("probability must be in (0, 1)")
        if self.num_shards < 1:
            raise ValueError("num_shards must be >= 1")
        if self.max_length < 8:
            raise ValueError(f"max_length must be >= 8, got {self.max_length}")


@dataclass
class PretrainRun:
    """One pretraining run (a ``foreach`` item)."""

    seed: int = 0
    """Seed of this run (replaces ``pretrain.train.seed``)."""
    shard: int = 0
    """Which corpus shard this run trains on (< ``mlm.num_shards``)."""

    def __post_init__(self):
        check_seed(self.seed)
        if self.shard < 0:
            raise ValueError(f"shard must be >= 0, got {self.shard}")


# Masking of the held-out split is fixed so perplexities compare across models and runs.
EVAL_MASK_SEED = 1234


@torch.inference_mode()
def perplexity(model, feats: Sequence[Feature], tokenizer, probability: float, device, batch_size: int = 64) -> float:
    """``exp`` of the mean masked-token cross-entropy over ``feats`` with a fixed masking pattern."""
    model.to(device).eval()
    collator = MlmCollator(tokenizer, probability, EVAL_MASK_SEED)
    total_loss, total_tokens = 0.0, 0
    for batch in batches(feats, batch_size, collator):
        batch = {k: v.to(device) for k, v in batch.items()}
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        # A masked-LM model's logits, or the MLM logits of BERT's pretraining model (MLM + NSP).
        logits = out.logits if hasattr(out, "logits") else out.prediction_logits
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


def run_rows(corpus_dir: str | Path, name: str, run: PretrainRun, mlm: MlmParams) -> list[dict]:
    """The training rows of pretraining run ``name``: its shard of the corpus's train split.

    Raises:
        PipelineError: the run's shard does not exist (checked before any training).
    """
    if run.shard >= mlm.num_shards:
        raise PipelineError(f"params.yaml: 'pretrain.runs.{name}.shard' must be < pretrain.mlm.num_shards")
    rows = read_split(corpus_dir, "train", "text")
    mine = shard(rows, run.shard, mlm.num_shards)
    if not mine:
        raise PipelineError(
            f"pretrain.runs.{name}.shard={run.shard}: shard {run.shard} of {mlm.num_shards} has no rows "
            f"({Path(corpus_dir) / 'train.jsonl'} has {len(rows)}; lower pretrain.mlm.num_shards)"
        )
    return mine


def check_mlm(mlm: MlmParams, model: torch.nn.Module, tokenizer, where: str) -> None:
    """Before masked-LM training or perplexity: ``mlm.max_length`` fits the model's positions and the tokenizer
    has a mask token; ``where`` names the artifact in errors."""
    check_input_length(model, mlm.max_length, "pretrain.mlm.max_length", where)
    if tokenizer.mask_token_id is None:
        raise PipelineError(f"{where}: the tokenizer has no mask token (masked-LM training and perplexity need one)")


def pretrain(model, train_rows, valid_rows, tokenizer, mlm: MlmParams, args: TrainArgs, device, desc: str,
             files: RunFiles | None = None) -> list[dict]:
    """Masked-LM training; returns per-epoch ``{"epoch", "loss", "perplexity"}`` on ``valid_rows``.

    Both splits are encoded once (in batches, held as :class:`~pipeline.data.features.Features`): every epoch
    reuses them.

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
