"""Building and re-heading models: from a config, a pretrained checkpoint, or another model's encoder."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PretrainedConfig, PreTrainedModel

from pipeline.config.args import check_seed
from pipeline.core.errors import PipelineError
from pipeline.core.locations import resolve_location
from pipeline.models import families
from pipeline.models.structure import apply_config_shapes_

HEADS = ("mlm", "classification", "qa", "pretraining")
"""The pipeline's model heads: masked LM, sequence classification, extractive QA, and BERT's MLM +
next-sentence prediction (``pretraining``, only while pretraining with ``pretrain.objective: mlm_nsp``)."""
# Only a task model's own new head, a pooler and an MLM head may be missing from a checkpoint (freshly
# initialised); everything under the bare model (``model.base_model``) must load.
FRESH_OK = ("pooler",)


@dataclass
class ArchParams:
    """A BERT-family architecture built from a config, or a pretrained checkpoint."""

    base: str = "scratch"
    """``scratch`` builds from the sizes below; else a hub model name, a local checkpoint dir, or
    ``pkg:<python package>/<dir>`` (a checkpoint inside an installed package)."""
    type: str = "bert"
    """The family built by ``base: scratch`` (a :data:`pipeline.models.families.FAMILIES` name); a checkpoint's
    family is its ``config.json`` ``model_type`` (this key is not read then, but must still name a family)."""
    hidden_size: int = 128
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 512
    max_position_embeddings: int = 256
    seed: int = 0
    """Seed of the random initialisation (``scratch``) or of newly added heads."""

    @classmethod
    def params_for(cls, raw: dict, key: str) -> type[ArchParams]:
        """This class, once ``raw``'s ``type`` names a registered family (the loader calls this, so the error
        names the key: ``params.yaml: '<key>.type': unknown model family '<type>' (known: ...)``)."""
        families.family(raw.get("type", cls.type), f"{key}.type")
        return cls

    def __post_init__(self):
        families.family(self.type)  # built in code rather than read by the loader: the same check, unkeyed
        for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        check_seed(self.seed)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not divisible by num_attention_heads "
                f"{self.num_attention_heads}"
            )


def head_class(head: str, model_type: str) -> type[PreTrainedModel]:
    """The transformers class of a head name for a model family.

    Raises:
        PipelineError: an unknown head, or a head the family has no class for.
    """
    if head not in HEADS:
        raise PipelineError(f"unknown model head '{head}' (known: {', '.join(HEADS)})")
    family = families.family(model_type)
    if head not in family.heads:
        raise PipelineError(f"model_type '{model_type}' has no '{head}' head (it has: {', '.join(family.heads)})")
    return family.heads[head]


def build_config(arch: ArchParams, vocab_size: int, pad_token_id: int) -> PretrainedConfig:
    """A config of the family ``arch.type`` (``model.type``) with ``arch``'s sizes, for ``base: scratch``."""
    return families.family(arch.type).build_config(arch, vocab_size, pad_token_id)


def checkpoint_family(location: str, key: str) -> families.Family:
    """The adapter of the checkpoint at ``location`` (its ``config.json`` ``model_type``).

    Raises:
        PipelineError: naming ``key`` when the config cannot be read or names an unsupported ``model_type``.
    """
    from transformers import AutoConfig

    try:
        # trust_remote_code=False: an auto_map in the checkpoint's config is never followed.
        model_type = AutoConfig.from_pretrained(location, trust_remote_code=False).model_type
    except (OSError, ValueError, KeyError) as err:
        raise PipelineError(f"{key} '{location}': cannot read its config.json ({str(err).splitlines()[0]})") from None
    try:
        return families.family(model_type)
    except PipelineError as err:
        raise PipelineError(f"{key} '{location}': {err}") from None


def check_load_report(model: PreTrainedModel, info: dict, family: families.Family, source: str) -> None:
    """Refuse a checkpoint that leaves encoder weights unloaded.

    ``info`` is ``from_pretrained(..., output_loading_info=True)``'s report: transformers 5 initialises missing
    weights at random and only logs them, so a checkpoint of another architecture would silently become a
    random model. Missing weights are allowed outside the bare model (the new task head, an MLM head the
    checkpoint lacks) and in a pooler; unexpected weights are allowed unless they are encoder weights (a
    checkpoint's own heads are expected).

    Raises:
        PipelineError: naming ``source`` and up to five offending weights.
    """
    prefix = f"{model.base_model_prefix}."
    encoder = set(model.base_model.state_dict())
    missing = sorted(k for k in info.get("missing_keys", ()) if k.removeprefix(prefix) in encoder
                     and not any(part in k.split(".") for part in FRESH_OK))
    unexpected = sorted(k for k in info.get("unexpected_keys", ()) if family.component(k)[0] != "head"
                        and not any(part in k.split(".") for part in FRESH_OK) and not k.endswith("position_ids"))
    mismatched = sorted(str(k[0] if isinstance(k, tuple) else k) for k in info.get("mismatched_keys", ()))
    if missing or unexpected or mismatched:
        raise PipelineError(
            f"{source}: the checkpoint does not fit its {family.model_type} architecture: "
            f"{len(missing)} encoder weights missing {missing[:5]}, {len(unexpected)} unexpected {unexpected[:5]}"
            + (f", {len(mismatched)} of another shape {mismatched[:5]}" if mismatched else ""))


def init_model(arch: ArchParams, head: str, vocab_size: int, pad_token_id: int, num_labels: int = 2,
               key: str = "model"):
    """A fresh model: random init of the family ``arch.type`` (``base: scratch``) or a pretrained checkpoint.

    A checkpoint's family is the ``model_type`` in its ``config.json`` (``arch.type`` is not read then), and
    its head class is that family's (:func:`head_class`); the checkpoint must load every encoder weight
    (:func:`check_load_report`). Remote code named in a checkpoint's ``auto_map`` is never run. ``key`` is
    the params section of ``arch`` (``model``, ``teacher.<task>.arch``), for messages.

    Raises:
        PipelineError: an unsupported ``model_type``, a checkpoint that cannot be read or leaves encoder
            weights unloaded, or an embedding table smaller than the pipeline's tokenizer (``vocab_size``,
            :func:`check_vocab_fits`; a larger, padded table is allowed).
    """
    torch.manual_seed(arch.seed)
    if arch.base == "scratch":
        config = build_config(arch, vocab_size, pad_token_id)
        if head == "classification":
            config.num_labels = num_labels
        return head_class(head, config.model_type)(config)
    location = resolve_location(arch.base)
    family = checkpoint_family(location, f"{key}.base")
    kwargs = {"num_labels": num_labels} if head == "classification" else {}
    try:
        model, info = head_class(head, family.model_type).from_pretrained(
            location, attn_implementation=family.attention, output_loading_info=True, **kwargs)
    except (OSError, ValueError, RuntimeError) as err:
        raise PipelineError(f"{key}.base '{arch.base}': cannot load ({str(err).splitlines()[0]})") from None
    check_load_report(model, info, family, f"{key}.base '{arch.base}'")
    check_vocab_fits(model.config.vocab_size, vocab_size, f"{key}.base '{arch.base}'")
    return model


def check_vocab_fits(table_rows: int, tokens: int, source: str) -> None:
    """Refuse an embedding table with fewer rows than the tokenizer has tokens: ids past the table would
    fail or index the wrong rows. A larger table is a checkpoint's padding and is allowed: DeBERTa-v3 ships
    128,100 rows for 128,001 tokens, NVIDIA's BERTs pad to a multiple of 8; those rows are never fed (every id
    comes from the tokenizer, and MLM masking samples random tokens from the tokenizer's ids) and their MLM
    logits are never a label.

    Raises:
        PipelineError: naming ``source``, both sizes and the fix.
    """
    if table_rows < tokens:
        raise PipelineError(
            f"{source} has vocab_size {table_rows} but the tokenizer has {tokens} tokens: its ids past the "
            f"embedding table cannot be embedded (set prepare.tokenizer to the model's tokenizer)")


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
    config = family.config_class.from_pretrained(str(config_dir), attn_implementation=family.attention)
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
    config._attn_implementation = families.of(src).attention
    torch.manual_seed(seed)
    model = head_class(head, config.model_type)(config)
    apply_config_shapes_(model)
    result = model.base_model.load_state_dict(src.base_model.state_dict(), strict=False)
    unexpected = [k for k in result.unexpected_keys if not k.startswith("pooler.")]
    missing = [k for k in result.missing_keys if not k.startswith("pooler.")]
    if missing or unexpected:
        raise PipelineError(f"encoder mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model
