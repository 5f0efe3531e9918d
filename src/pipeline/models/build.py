"""Building and re-heading models: from a config, a pretrained checkpoint, or another model's encoder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from transformers import PretrainedConfig, PreTrainedModel

from pipeline.config.args import ArchParams
from pipeline.core.errors import PipelineError
from pipeline.core.locations import resolve_location
from pipeline.models import families
from pipeline.models.structure import apply_config_shapes_

# PyTorch's fused scaled-dot-product attention (flash / memory-efficient kernels on GPUs) for training and
# evaluation; only code that needs attention probabilities switches a model to "eager" (distill).
ATTENTION = "sdpa"
HEADS = ("mlm", "classification", "qa")
"""The pipeline's model heads: masked LM, sequence classification, extractive QA."""


def head_class(head: str, model_type: str = "bert") -> type[PreTrainedModel]:
    """The transformers class of a head name for a model family."""
    if head not in HEADS:
        raise PipelineError(f"unknown model head '{head}' (known: {', '.join(HEADS)})")
    return families.family(model_type).heads[head]


def build_config(arch: ArchParams, vocab_size: int, pad_token_id: int) -> PretrainedConfig:
    """A config of the BERT family from the architecture params."""
    return families.family("bert").config_class(
        vocab_size=vocab_size,
        hidden_size=arch.hidden_size,
        num_hidden_layers=arch.num_hidden_layers,
        num_attention_heads=arch.num_attention_heads,
        intermediate_size=arch.intermediate_size,
        max_position_embeddings=arch.max_position_embeddings,
        pad_token_id=pad_token_id,
        attn_implementation=ATTENTION,
    )


def init_model(arch: ArchParams, head: str, vocab_size: int, pad_token_id: int, num_labels: int = 2):
    """A fresh model: random init from ``arch`` (``base: scratch``) or a pretrained checkpoint.

    The checkpoint's vocabulary must match the pipeline's tokenizer (``vocab_size``): a mismatch would
    silently index the wrong embeddings, so it is an error.
    """
    cls = head_class(head)
    torch.manual_seed(arch.seed)
    if arch.base == "scratch":
        config = build_config(arch, vocab_size, pad_token_id)
        if head == "classification":
            config.num_labels = num_labels
        return cls(config)

    kwargs = {"num_labels": num_labels} if head == "classification" else {}
    kwargs["attn_implementation"] = ATTENTION
    try:
        model = cls.from_pretrained(resolve_location(arch.base), **kwargs)
    except (OSError, ValueError) as err:
        raise PipelineError(f"model.base '{arch.base}': cannot load ({str(err).splitlines()[0]})") from None
    if model.config.vocab_size != vocab_size:
        raise PipelineError(
            f"model.base '{arch.base}' has vocab_size {model.config.vocab_size} but the tokenizer has "
            f"{vocab_size} tokens (set prepare.tokenizer to the model's tokenizer)"
        )
    return model


def empty_model(config_dir: str | os.PathLike, head: str) -> PreTrainedModel:
    """A model with the architecture (including pruned shapes) saved in ``config_dir``; weights unset.

    Raises:
        PipelineError: ``config.json`` is not valid JSON or names an unsupported ``model_type``.
    """
    path = Path(config_dir) / "config.json"
    try:
        model_type = json.loads(path.read_text()).get("model_type")
    except (OSError, json.JSONDecodeError, AttributeError) as err:
        raise PipelineError(f"{path}: not a readable config ({err})") from None
    family = families.family(model_type)
    config = family.config_class.from_pretrained(str(config_dir), attn_implementation=ATTENTION)
    model = family.heads[head](config)
    apply_config_shapes_(model)
    return model


def load_state_(model: PreTrainedModel, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Load ``tensors`` strictly, allowing only weights that are tied (and so not stored)."""
    tied = set(getattr(model, "_tied_weights_keys", None) or {})
    try:
        result = model.load_state_dict(tensors, strict=False)
    except RuntimeError as err:  # shape mismatch
        raise PipelineError(f"{source}: does not fit the model in config.json ({str(err)[:300]})") from None
    missing = set(result.missing_keys) - tied
    if missing or result.unexpected_keys:
        raise PipelineError(
            f"{source}: missing tensors {sorted(missing)[:5]}, unexpected {sorted(result.unexpected_keys)[:5]}"
        )
    model.tie_weights()


def with_head(src: PreTrainedModel, head: str, num_labels: int = 2, seed: int = 0) -> PreTrainedModel:
    """A new model with ``src``'s encoder (embeddings + layers, pruned shapes kept) and a fresh ``head``.

    The new head (and a pooler the source lacks, e.g. coming from MLM) is initialised from ``seed``.
    """
    config = type(src.config).from_dict(src.config.to_dict())
    config.num_labels = num_labels
    config._attn_implementation = ATTENTION
    torch.manual_seed(seed)
    model = head_class(head, config.model_type)(config)
    apply_config_shapes_(model)
    result = model.base_model.load_state_dict(src.base_model.state_dict(), strict=False)
    unexpected = [k for k in result.unexpected_keys if not k.startswith("pooler.")]
    missing = [k for k in result.missing_keys if not k.startswith("pooler.")]
    if missing or unexpected:
        raise PipelineError(f"encoder mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model
