"""The model-family adapter: where a BERT-family encoder keeps the parts compression methods touch.

Pruning, distillation, quantization and the model facts never reach into ``model.bert`` or a config class
directly; they ask the model's :class:`Family` for its layers, attention projections, feed-forward
projections, head size, and the transformers classes of each head. One adapter per family
(:mod:`pipeline.models.families`), chosen by ``config.model_type``.

A family is mostly declarative: dotted paths of its parts inside the bare model (``model.base_model``) and
inside one layer. The same paths are written into the modeling file of a structurally pruned artifact
(:mod:`pipeline.models.remote_code`), so plain transformers rebuilds the pruned shapes from them.

Two layouts are not one Linear per role:

- a *fused* attention input projection (ModernBERT's ``Wqkv``): :attr:`Family.qkv_blocks` head-major blocks
  (query, key, value) stacked along the output rows, so head ``h`` is ``blocks`` row ranges;
- a *gated* FFN input projection (ModernBERT's GLU ``Wi``): :attr:`Family.ffn_in_blocks` blocks (input and
  gate) stacked along the rows, so neuron ``i`` is rows ``i`` and ``i + I``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from transformers import PretrainedConfig, PreTrainedModel


ENCODER_COMPONENTS = ("attention", "ffn")


def resolve(root: torch.nn.Module, path: str) -> list[torch.nn.Module]:
    """The modules at a dotted ``path`` under ``root``; ``*`` expands every child of a container, in order.

    ``resolve(bert, "encoder.layer.*")`` is the list of BERT's layers; a path without ``*`` gives one module.

    Raises:
        AttributeError: a part of the path does not exist.
    """
    found = [root]
    for part in path.split(".") if path else []:
        found = [child for m in found for child in (m.children() if part == "*" else [getattr(m, part)])]
    return found


class Family:
    """How one transformers model family lays out its encoder (BERT is :mod:`pipeline.models.families.bert`).

    Subclasses set the class attributes; the methods work from them and can be overridden where a family
    needs more (ALBERT's shared layers, ModernBERT's per-layer attention types).
    """

    model_type: str
    """``config.model_type`` of the family's checkpoints."""
    config_class: type[PretrainedConfig]
    heads: Mapping[str, type[PreTrainedModel]]
    """Model class per pipeline head: ``mlm``, ``classification``, ``qa`` (BERT also ``pretraining``)."""
    attention: str = "sdpa"
    """Attention implementation for training and evaluation (``eager`` where the family has no ``sdpa``)."""
    layers_path: str = "encoder.layer.*"
    """The layers inside the bare model, in order (``*``: every child of a ModuleList)."""
    qkv_paths: tuple[str, ...] = ()
    """Inside a layer: the head-major projections (query first); paths absent from a layer are skipped."""
    qkv_blocks: int = 1
    """Head-major blocks stacked in each of ``qkv_paths`` (3 for a fused query/key/value projection)."""
    attention_output_path: str = ""
    """Inside a layer: the projection reading the concatenated head outputs (its input columns are heads)."""
    ffn_in_path: str = ""
    """Inside a layer: the FFN input projection (its output rows are neurons)."""
    ffn_in_blocks: int = 1
    """Blocks of neurons stacked in the FFN input projection's rows (2 for a GLU: input and gate)."""
    ffn_out_path: str = ""
    """Inside a layer: the FFN output projection (its input columns are neurons)."""
    head_size_path: str = ""
    """Inside a layer: the attribute holding the per-head width."""
    head_count_path: str = ""
    """Inside a layer: the module whose attributes :attr:`head_count_attrs` track the head count."""
    head_count_attrs: Mapping[str, str] = {}
    """Attribute -> ``heads`` (the head count) or ``width`` (heads * head size), kept in step when pruning."""
    ffn_size_key: str = "intermediate_size"
    """The config attribute holding the unpruned FFN width."""
    layer_pattern: re.Pattern
    """Matches a parameter name inside encoder layer ``N``: group 1 is ``N``, group 2 the sublayer name."""
    attention_sublayers: tuple[str, ...] = ("attention",)
    """Values of ``layer_pattern`` group 2 that belong to attention (the rest is the feed-forward network)."""
    embedding_parts: tuple[str, ...] = (".embeddings.",)
    """Name parts of parameters counted as embeddings (with encoder-level tensors outside the layers)."""

    # ---------------------------------------------------------------------------------------- layout
    def layers(self, model: torch.nn.Module) -> list[torch.nn.Module]:
        """The encoder layers of a bare model or of a task model wrapping one, in order."""
        return resolve(model.base_model, self.layers_path)

    def set_layers(self, model: torch.nn.Module, layers: list[torch.nn.Module]) -> None:
        """Replace the encoder's layers (layer dropping); the config's layer count is the caller's."""
        parent, _, name = self.layers_path.removesuffix(".*").rpartition(".")
        holder = resolve(model.base_model, parent)[0]
        setattr(holder, name, torch.nn.ModuleList(layers))

    def _at(self, layer: torch.nn.Module, path: str) -> torch.nn.Module:
        return resolve(layer, path)[0]

    def qkv(self, layer: torch.nn.Module) -> tuple[torch.nn.Linear, ...]:
        """The projections whose outputs are split into heads (query first), head-major in each block."""
        return tuple(self._at(layer, p) for p in self.qkv_paths if _has(layer, p))

    def attention_output(self, layer: torch.nn.Module) -> torch.nn.Linear:
        """The projection reading the concatenated head outputs ``(B, T, H * d)``."""
        return self._at(layer, self.attention_output_path)

    def ffn_in(self, layer: torch.nn.Module) -> torch.nn.Linear:
        """The feed-forward input projection (rows are neurons, ``ffn_in_blocks`` blocks of them)."""
        return self._at(layer, self.ffn_in_path)

    def ffn_out(self, layer: torch.nn.Module) -> torch.nn.Linear:
        """The feed-forward output projection; its input ``(B, T, I)`` is the neuron activations."""
        return self._at(layer, self.ffn_out_path)

    def layer_head_size(self, layer: torch.nn.Module) -> int:
        """Per-head width of one layer's attention."""
        module, _, attr = self.head_size_path.rpartition(".")
        return int(getattr(self._at(layer, module), attr))

    def head_size(self, model: torch.nn.Module) -> int:
        """Per-head width (fixed by the unpruned config; pruning never changes it)."""
        return self.layer_head_size(self.layers(model)[0])

    def set_head_count(self, layer: torch.nn.Module, heads: int) -> None:
        """Keep the attention module's bookkeeping (head count, width) in step with its physical shape."""
        if not self.head_count_attrs:
            return
        module, size = self._at(layer, self.head_count_path), self.layer_head_size(layer)
        for attr, kind in self.head_count_attrs.items():
            setattr(module, attr, heads if kind == "heads" else heads * size)

    # ---------------------------------------------------------------------------------------- config
    def full_heads(self, config: PretrainedConfig) -> int:
        """Heads per layer of the unpruned model."""
        return int(config.num_attention_heads)

    def full_ffn(self, config: PretrainedConfig) -> int:
        """FFN neurons per layer of the unpruned model."""
        return int(getattr(config, self.ffn_size_key))

    def config_head_size(self, config: PretrainedConfig) -> int:
        """Per-head width from a config (``attention_head_size`` where the family allows setting it)."""
        return int(getattr(config, "attention_head_size", None) or config.hidden_size // config.num_attention_heads)

    def config_kwargs(self, arch, vocab_size: int, pad_token_id: int) -> dict:
        """Config arguments of a randomly initialised model with ``arch``'s sizes (``model.base: scratch``)."""
        return {"vocab_size": vocab_size, "hidden_size": arch.hidden_size, "num_hidden_layers": arch.num_hidden_layers,
                "num_attention_heads": arch.num_attention_heads, "intermediate_size": arch.intermediate_size,
                "max_position_embeddings": arch.max_position_embeddings, "pad_token_id": pad_token_id}

    def build_config(self, arch, vocab_size: int, pad_token_id: int) -> PretrainedConfig:
        """A config of this family with ``arch``'s sizes (see :meth:`config_kwargs`)."""
        return self.config_class(**self.config_kwargs(arch, vocab_size, pad_token_id),
                                 attn_implementation=self.attention)

    # --------------------------------------------------------------------------------- structural checks
    def check_structural(self, model: torch.nn.Module, what: str, keep: list[int] | None = None) -> None:
        """Raise :class:`pipeline.core.errors.PipelineError` when per-layer structural pruning (``what``:
        ``heads``, ``ffn``, ``layers`` keeping the layers ``keep``) cannot be applied to this model; every layout
        allows it unless its adapter says otherwise (ALBERT's shared layers, ModernBERT's first layer)."""

    def after_drop(self, model: torch.nn.Module, keep: list[int]) -> None:
        """Family-specific config updates after :func:`pipeline.models.structure.drop_layers_` kept ``keep``."""

    # ---------------------------------------------------------------------------------------- inputs
    def model_inputs(self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The entries of ``batch`` the model takes: ``token_type_ids`` only when the model has more than one
        segment embedding (RoBERTa's single one, DistilBERT and ModernBERT take none), so a tokenizer that
        makes segment ids for pairs never indexes past a model's segment table."""
        config = getattr(model, "config", None)
        if "token_type_ids" in batch and getattr(config, "type_vocab_size", 0) <= 1:
            return {k: v for k, v in batch.items() if k != "token_type_ids"}
        return dict(batch)

    # ------------------------------------------------------------------------------------- derived
    def prunable_linears(self, model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
        """The encoder layers' Linear layers by path inside the bare model (``model.base_model``), e.g.
        ``encoder.layer.0.attention.self.query``; embeddings, LayerNorms, poolers and task heads stay dense."""
        return {name: m for name, m in model.base_model.named_modules()
                if isinstance(m, torch.nn.Linear) and self.component(f"{name}.weight")[0] in ENCODER_COMPONENTS}

    def component(self, name: str) -> tuple[str, int | None]:
        """``(component, layer index or None)`` of a parameter name: ``attention``/``ffn`` with the layer
        index inside the encoder, else ``embeddings``, ``pooler`` or ``head``."""
        m = self.layer_pattern.search(name)
        if m:
            return ("attention" if m.group(2) in self.attention_sublayers else "ffn"), int(m.group(1))
        if any(part in f".{name}" for part in self.embedding_parts):
            return "embeddings", None
        if ".pooler." in f".{name}":
            return "pooler", None
        return "head", None

    def shape_fact(self, name: str, weight: torch.Tensor, head_size: int) -> tuple[str, int] | None:
        """``("heads", n)`` or ``("ffn_neurons", n)`` when the stored parameter ``name`` fixes one of its layer's
        sizes (read from a weights file, so pruned shapes are counted as stored); None otherwise."""
        if name.endswith(f"{self.qkv_paths[0]}.weight"):
            return "heads", weight.shape[0] // (head_size * self.qkv_blocks)
        if name.endswith(f"{self.ffn_in_path}.weight"):
            return "ffn_neurons", weight.shape[0] // self.ffn_in_blocks
        return None

    def layout(self) -> dict:
        """The paths and block counts as plain JSON (written into pruned artifacts' modeling files)."""
        return {"layers": self.layers_path, "qkv": list(self.qkv_paths), "qkv_blocks": self.qkv_blocks,
                "attention_output": self.attention_output_path, "ffn_in": self.ffn_in_path,
                "ffn_in_blocks": self.ffn_in_blocks, "ffn_out": self.ffn_out_path,
                "head_size": self.head_size_path, "head_count": self.head_count_path,
                "head_count_attrs": dict(self.head_count_attrs), "heads_key": "num_attention_heads",
                "ffn_key": self.ffn_size_key}


def _has(root: torch.nn.Module, path: str) -> bool:
    try:
        resolve(root, path)
    except AttributeError:
        return False
    return True
