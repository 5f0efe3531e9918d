"""DeBERTa-v2 and v3 (``model_type`` ``deberta-v2``): ``model.deberta.encoder.layer[i]`` with disentangled
(relative-position) attention.

Each layer: ``attention.self.{query_proj,key_proj,value_proj}`` (head-major), and, in configs with
``share_att_key: false``, ``pos_key_proj``/``pos_query_proj`` projecting the shared relative-position
embeddings per head (pruned with the same heads); ``attention.output.dense``, ``intermediate.dense``
(neurons), ``output.dense``. The relative-position embeddings, their LayerNorm and the optional convolution
after the first layer live in the encoder, outside the layers: they are counted as embeddings and never
pruned. No ``sdpa`` kernel in transformers for this attention: it runs ``eager``.
"""

from __future__ import annotations

import re

from transformers import (DebertaV2Config, DebertaV2ForMaskedLM, DebertaV2ForQuestionAnswering,
                          DebertaV2ForSequenceClassification)

from pipeline.models.families import register
from pipeline.models.families.base import Family


@register
class DebertaV2(Family):
    model_type = "deberta-v2"
    config_class = DebertaV2Config
    heads = {"mlm": DebertaV2ForMaskedLM, "classification": DebertaV2ForSequenceClassification,
             "qa": DebertaV2ForQuestionAnswering}
    attention = "eager"
    layers_path = "encoder.layer.*"
    qkv_paths = ("attention.self.query_proj", "attention.self.key_proj", "attention.self.value_proj",
                 "attention.self.pos_key_proj", "attention.self.pos_query_proj")
    attention_output_path = "attention.output.dense"
    ffn_in_path = "intermediate.dense"
    ffn_out_path = "output.dense"
    head_size_path = "attention.self.attention_head_size"
    head_count_path = "attention.self"
    head_count_attrs = {"num_attention_heads": "heads", "all_head_size": "width"}
    layer_pattern = re.compile(r"encoder\.layer\.(\d+)\.(attention|intermediate|output)\.")
    embedding_parts = (".embeddings.", ".encoder.rel_embeddings.", ".encoder.LayerNorm.", ".encoder.conv.")

    def config_kwargs(self, arch, vocab_size: int, pad_token_id: int) -> dict:
        # DeBERTa-v3's layout: relative attention both ways with shared keys, bucketed positions, no absolute
        # position embeddings, no segment embeddings.
        return {**super().config_kwargs(arch, vocab_size, pad_token_id), "relative_attention": True,
                "pos_att_type": ["p2c", "c2p"], "position_biased_input": False, "share_att_key": True,
                "position_buckets": min(256, arch.max_position_embeddings), "max_relative_positions": -1,
                "norm_rel_ebd": "layer_norm", "type_vocab_size": 0}
