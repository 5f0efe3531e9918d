"""Model-family adapters (:class:`base.Family`), one module per supported ``config.model_type``.

:data:`FAMILIES` finds a family by the registry rule (:mod:`pipeline.core.registry`): model type ``N`` lives in
``pipeline/models/families/<N>.py`` with ``-`` written ``_`` (``deberta-v2`` in ``deberta_v2.py``), whose class
registers itself with :func:`register`. Adding a family is one new file here. Which family a model needs is a
property of its checkpoint, not of a param, so every stage that handles models depends on all adapters
(``tools/code_deps.py`` lists them all).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from transformers import PretrainedConfig

from pipeline.core.registry import Registry
from pipeline.models.families.base import Family

FAMILIES: Registry[Family] = Registry("pipeline.models.families", "model family")
"""Every family by ``model_type``, registered by the modules of this package."""


def register(cls: type[Family]) -> type[Family]:
    """Class decorator: register one instance of a :class:`Family` subclass under its ``model_type`` (from the
    module named after it, :meth:`pipeline.core.registry.Registry.module`)."""
    FAMILIES.add(cls.model_type, cls(), cls.__module__)
    return cls


def family(model_type: str | None, key: str = "") -> Family:
    """The adapter of ``model_type``.

    Args:
        key: the params key that named it (``model.type``), for the message; empty when it comes from a
            checkpoint's ``config.json`` (the caller names the file).

    Raises:
        PipelineError: an unsupported type, one line listing the supported ones.
    """
    return FAMILIES.get(model_type, key)


def of(model_or_config: torch.nn.Module | PretrainedConfig) -> Family:
    """The adapter of a model or config (read from ``config.model_type``)."""
    config = getattr(model_or_config, "config", model_or_config)
    return family(config.model_type)


def model_inputs(model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The entries of ``batch`` that ``model`` takes (see :meth:`base.Family.model_inputs`)."""
    return of(model).model_inputs(model, batch)
