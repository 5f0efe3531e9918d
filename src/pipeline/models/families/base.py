"""The model-family adapter: where a BERT-family encoder keeps the parts compression methods touch.

Pruning, distillation, quantization and the model facts never reach into ``model.bert`` or a config class
directly; they ask the model's :class:`Family` for its layers, attention projections, feed-forward
projections, head size, and the transformers classes of each head. One adapter per family
(:mod:`pipeline.models.families`), chosen by ``config.model_type``.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod

import torch
from transformers import PretrainedConfig, PreTrainedModel


class Family(ABC):
    """How one transformers model family lays out its encoder (BERT is :mod:`pipeline.models.families.bert`)."""

    model_type: str
    """``config.model_type`` of the family's checkpoints."""
    config_class: type[PretrainedConfig]
    heads: dict[str, type[PreTrainedModel]]
    """Model class per pipeline head: ``mlm``, ``classification``, ``qa``."""
    layer_pattern: re.Pattern
    """Matches a parameter name inside encoder layer ``N``: group 1 is ``N``, group 2 the sublayer name."""
    attention_sublayers: tuple[str, ...]
    """Values of ``layer_pattern`` group 2 that belong to attention (the rest is the feed-forward network)."""
    query_weight: str
    """Name ending of a layer's query projection weight (its rows count the heads)."""
    ffn_in_weight: str
    """Name ending of a layer's FFN input projection weight (its rows count the neurons)."""

    # ---------------------------------------------------------------------------------------- layout
    def encoder(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module holding the layers (prunable Linear weights are searched under it)."""
        return model.base_model.encoder

    @abstractmethod
    def layers(self, model: torch.nn.Module) -> torch.nn.ModuleList:
        """The encoder layers of a bare model or of a task model wrapping one, in order."""

    @abstractmethod
    def set_layers(self, model: torch.nn.Module, layers: list[torch.nn.Module]) -> None:
        """Replace the encoder's layers (layer dropping); the config's layer count is the caller's."""

    @abstractmethod
    def qkv(self, layer: torch.nn.Module) -> tuple[torch.nn.Linear, ...]:
        """The projections whose outputs are split into heads (query, key, value), head-major."""

    @abstractmethod
    def attention_output(self, layer: torch.nn.Module) -> torch.nn.Linear:
        """The projection reading the concatenated head outputs."""

    @abstractmethod
    def attention_core(self, layer: torch.nn.Module) -> torch.nn.Module:
        """The module whose output (or first output) is the concatenated head outputs ``(B, T, H * d)``."""

    @abstractmethod
    def ffn_in(self, layer: torch.nn.Module) -> torch.nn.Linear:
        """The feed-forward input projection (rows are neurons)."""

    @abstractmethod
    def ffn_out(self, layer: torch.nn.Module) -> torch.nn.Linear:
        """The feed-forward output projection (columns are neurons)."""

    @abstractmethod
    def ffn_activation(self, layer: torch.nn.Module) -> torch.nn.Module:
        """The module whose output is the neuron activations ``(B, T, I)``."""

    @abstractmethod
    def head_size(self, model: torch.nn.Module) -> int:
        """Per-head width ``hidden_size // num_attention_heads`` (fixed by the unpruned config)."""

    @abstractmethod
    def set_head_count(self, layer: torch.nn.Module, heads: int) -> None:
        """Keep the attention module's bookkeeping (head count, width) in step with its physical shape."""

    # ------------------------------------------------------------------------------------- derived
    def prunable_linears(self, model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
        """The encoder's Linear layers by path inside the bare model (``model.base_model``), e.g.
        ``encoder.layer.0.attention.self.query``; embeddings, LayerNorms and task heads stay dense."""
        encoder = self.encoder(model)
        prefix = _path_of(model.base_model, encoder)
        return {f"{prefix}{name}": m for name, m in encoder.named_modules() if isinstance(m, torch.nn.Linear)}

    def component(self, name: str) -> tuple[str, int | None]:
        """``(component, layer index or None)`` of a parameter name: ``attention``/``ffn`` with the layer
        index inside the encoder, else ``embeddings``, ``pooler`` or ``head``."""
        m = self.layer_pattern.search(name)
        if m:
            return ("attention" if m.group(2) in self.attention_sublayers else "ffn"), int(m.group(1))
        if ".embeddings." in f".{name}":
            return "embeddings", None
        if ".pooler." in f".{name}":
            return "pooler", None
        return "head", None


    def shape_fact(self, name: str, weight: torch.Tensor, head_size: int) -> tuple[str, int] | None:
        """``("heads", n)`` or ``("ffn_neurons", n)`` when the stored parameter ``name`` fixes one of its layer's
        sizes (read from a weights file, so pruned shapes are counted as stored); None otherwise."""
        if name.endswith(self.query_weight):
            return "heads", weight.shape[0] // head_size
        if name.endswith(self.ffn_in_weight):
            return "ffn_neurons", weight.shape[0]
        return None


def _path_of(root: torch.nn.Module, module: torch.nn.Module) -> str:
    """The dotted path of ``module`` inside ``root`` plus a trailing dot ("" for ``root`` itself)."""
    for name, m in root.named_modules():
        if m is module:
            return f"{name}." if name else ""
    raise ValueError("module is not part of the model")
