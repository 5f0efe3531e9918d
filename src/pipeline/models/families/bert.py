"""BERT (and BERT-architecture checkpoints such as MiniLM): ``model.bert.encoder.layer[i]``.

Each layer: ``attention.self.{query,key,value}`` (head-major outputs), ``attention.output.dense``,
``intermediate.dense`` (neurons) and ``output.dense``.
"""

from __future__ import annotations

import re

import torch
from transformers import BertConfig, BertForMaskedLM, BertForQuestionAnswering, BertForSequenceClassification

from pipeline.models.families.base import Family


class Bert(Family):
    model_type = "bert"
    config_class = BertConfig
    heads = {"mlm": BertForMaskedLM, "classification": BertForSequenceClassification, "qa": BertForQuestionAnswering}
    layer_pattern = re.compile(r"encoder\.layer\.(\d+)\.(attention|intermediate|output)\.")
    attention_sublayers = ("attention",)
    query_weight = "attention.self.query.weight"
    ffn_in_weight = "intermediate.dense.weight"

    def layers(self, model: torch.nn.Module) -> torch.nn.ModuleList:
        return model.base_model.encoder.layer

    def set_layers(self, model: torch.nn.Module, layers: list[torch.nn.Module]) -> None:
        model.base_model.encoder.layer = torch.nn.ModuleList(layers)

    def qkv(self, layer):
        attn = layer.attention.self
        return attn.query, attn.key, attn.value

    def attention_output(self, layer):
        return layer.attention.output.dense

    def attention_core(self, layer):
        return layer.attention.self

    def ffn_in(self, layer):
        return layer.intermediate.dense

    def ffn_out(self, layer):
        return layer.output.dense

    def ffn_activation(self, layer):
        return layer.intermediate

    def head_size(self, model: torch.nn.Module) -> int:
        return self.layers(model)[0].attention.self.attention_head_size

    def set_head_count(self, layer: torch.nn.Module, heads: int) -> None:
        attn = layer.attention.self
        attn.num_attention_heads = heads
        attn.all_head_size = heads * attn.attention_head_size
