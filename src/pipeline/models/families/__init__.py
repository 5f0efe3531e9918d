"""Model-family adapters (:class:`base.Family`), one per supported ``config.model_type``.

Every family is imported here: which one a model needs is a property of its checkpoint, not of a param, so
every stage that handles models depends on all adapters.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from transformers import PretrainedConfig

from pipeline.core.errors import PipelineError
from pipeline.models.families.albert import Albert
from pipeline.models.families.base import Family
from pipeline.models.families.bert import Bert
from pipeline.models.families.deberta_v2 import DebertaV2
from pipeline.models.families.distilbert import DistilBert
from pipeline.models.families.electra import Electra
from pipeline.models.families.modernbert import ModernBert
from pipeline.models.families.roberta import Roberta, XLMRoberta

FAMILIES: dict[str, Family] = {f.model_type: f for f in (Bert(), Roberta(), XLMRoberta(), DistilBert(), Electra(),
                                                         DebertaV2(), ModernBert(), Albert())}


def family(model_type: str | None) -> Family:
    """The adapter of ``model_type``; an unsupported type is a :class:`PipelineError` listing the supported ones."""
    if model_type not in FAMILIES:
        raise PipelineError(f"model_type '{model_type}' is not supported (supported: {', '.join(sorted(FAMILIES))})")
    return FAMILIES[model_type]


def of(model_or_config: torch.nn.Module | PretrainedConfig) -> Family:
    """The adapter of a model or config (read from ``config.model_type``)."""
    config = getattr(model_or_config, "config", model_or_config)
    return family(config.model_type)


def model_inputs(model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The entries of ``batch`` that ``model`` takes (see :meth:`base.Family.model_inputs`)."""
    return of(model).model_inputs(model, batch)
