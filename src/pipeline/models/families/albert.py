"""ALBERT: ``model.albert.encoder.albert_layer_groups[g].albert_layers[j]``, one set of layer weights shared by
several layers.

Each layer: ``attention.{query,key,value}`` (head-major), ``attention.dense``, ``ffn`` (neurons) and
``ffn_output``; ``embedding_hidden_mapping_in`` projects the factorised embeddings to the hidden width
(counted as embeddings). Layer ``i`` runs group ``i * num_hidden_groups // num_hidden_layers``: with the
usual ``num_hidden_groups: 1`` every layer runs the same weights. Zeroing methods, distillation and
quantization work on the shared weights; per-layer structural pruning (heads, FFN neurons, layer dropping)
would change every layer that shares them, so it is refused unless every layer has its own group
(``num_hidden_groups == num_hidden_layers`` and ``inner_group_num == 1``).
"""

from __future__ import annotations

import re

import torch
from transformers import AlbertConfig, AlbertForMaskedLM, AlbertForQuestionAnswering, AlbertForSequenceClassification

from pipeline.core.errors import PipelineError
from pipeline.models.families import register
from pipeline.models.families.base import Family


@register
class Albert(Family):
    model_type = "albert"
    config_class = AlbertConfig
    heads = {"mlm": AlbertForMaskedLM, "classification": AlbertForSequenceClassification,
             "qa": AlbertForQuestionAnswering}
    layers_path = "encoder.albert_layer_groups.*.albert_layers.*"
    qkv_paths = ("attention.query", "attention.key", "attention.value")
    attention_output_path = "attention.dense"
    ffn_in_path = "ffn"
    ffn_out_path = "ffn_output"
    head_size_path = "attention.attention_head_size"
    head_count_path = "attention"
    head_count_attrs = {"num_attention_heads": "heads", "all_head_size": "width"}
    layer_pattern = re.compile(r"albert_layer_groups\.(\d+)\.albert_layers\.\d+\.(attention|full_layer_layer_norm|"
                               r"ffn_output|ffn)\.")
    embedding_parts = (".embeddings.", ".embedding_hidden_mapping_in.")

    def config_kwargs(self, arch, vocab_size: int, pad_token_id: int) -> dict:
        # ALBERT's sharing (one group for all layers); embeddings as wide as the layers.
        return {**super().config_kwargs(arch, vocab_size, pad_token_id), "embedding_size": arch.hidden_size,
                "num_hidden_groups": 1, "inner_group_num": 1}

    def check_structural(self, model, what: str, keep: list[int] | None = None) -> None:
        config = model.config
        if config.num_hidden_groups != config.num_hidden_layers or config.inner_group_num != 1:
            raise PipelineError(
                f"ALBERT shares layer weights ({config.num_hidden_layers} layers run {config.num_hidden_groups} "
                f"group(s) of {config.inner_group_num} layer(s)): per-layer {what} pruning would change every layer "
                "sharing them, so it is refused (zeroing methods, distillation and quantization work)")

    def set_layers(self, model, layers: list[torch.nn.Module]) -> None:
        encoder = model.base_model.encoder
        owner = {id(group.albert_layers[0]): group for group in encoder.albert_layer_groups}
        encoder.albert_layer_groups = torch.nn.ModuleList([owner[id(layer)] for layer in layers])

    def after_drop(self, model, keep: list[int]) -> None:
        model.config.num_hidden_groups = len(keep)
