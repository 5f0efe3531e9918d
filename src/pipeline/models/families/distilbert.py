"""DistilBERT: ``model.distilbert.transformer.layer[i]``, no segment embeddings, no pooler.

Each layer: ``attention.{q_lin,k_lin,v_lin}`` (head-major), ``attention.out_lin``, ``ffn.lin1`` (neurons)
and ``ffn.lin2``; LayerNorms ``sa_layer_norm`` (counted with attention) and ``output_layer_norm`` (FFN). The
config names its sizes ``dim``, ``n_heads``, ``n_layers`` and ``hidden_dim`` (the FFN width).
"""

from __future__ import annotations

import re

from transformers import (DistilBertConfig, DistilBertForMaskedLM, DistilBertForQuestionAnswering,
                          DistilBertForSequenceClassification)

from pipeline.models.families import register
from pipeline.models.families.base import Family


@register
class DistilBert(Family):
    model_type = "distilbert"
    config_class = DistilBertConfig
    heads = {"mlm": DistilBertForMaskedLM, "classification": DistilBertForSequenceClassification,
             "qa": DistilBertForQuestionAnswering}
    layers_path = "transformer.layer.*"
    qkv_paths = ("attention.q_lin", "attention.k_lin", "attention.v_lin")
    attention_output_path = "attention.out_lin"
    ffn_in_path = "ffn.lin1"
    ffn_out_path = "ffn.lin2"
    head_size_path = "attention.attention_head_size"
    head_count_path = "attention"
    head_count_attrs = {"n_heads": "heads"}
    ffn_size_key = "hidden_dim"
    layer_pattern = re.compile(r"transformer\.layer\.(\d+)\.(attention|sa_layer_norm|ffn|output_layer_norm)\.")
    attention_sublayers = ("attention", "sa_layer_norm")

    def config_kwargs(self, arch, vocab_size: int, pad_token_id: int) -> dict:
        return {"vocab_size": vocab_size, "dim": arch.hidden_size, "n_layers": arch.num_hidden_layers,
                "n_heads": arch.num_attention_heads, "hidden_dim": arch.intermediate_size,
                "max_position_embeddings": arch.max_position_embeddings, "pad_token_id": pad_token_id}

    def after_drop(self, model, keep: list[int]) -> None:
        model.base_model.transformer.n_layers = len(keep)
