"""BERT (and BERT-architecture checkpoints such as MiniLM): ``model.bert.encoder.layer[i]``.

Each layer: ``attention.self.{query,key,value}`` (head-major outputs), ``attention.output.dense``,
``intermediate.dense`` (neurons) and ``output.dense``. The only family with a next-sentence head
(``pretraining``: :class:`transformers.BertForPreTraining`, for ``pretrain.objective: mlm_nsp``).
"""

from __future__ import annotations

import re

from transformers import (BertConfig, BertForMaskedLM, BertForPreTraining, BertForQuestionAnswering,
                          BertForSequenceClassification)

from pipeline.models.families import register
from pipeline.models.families.base import Family


class BertLayout(Family):
    """The BERT layer layout, which RoBERTa, XLM-RoBERTa and ELECTRA share."""

    layers_path = "encoder.layer.*"
    qkv_paths = ("attention.self.query", "attention.self.key", "attention.self.value")
    attention_output_path = "attention.output.dense"
    ffn_in_path = "intermediate.dense"
    ffn_out_path = "output.dense"
    head_size_path = "attention.self.attention_head_size"
    head_count_path = "attention.self"
    head_count_attrs = {"num_attention_heads": "heads", "all_head_size": "width"}
    layer_pattern = re.compile(r"encoder\.layer\.(\d+)\.(attention|intermediate|output)\.")


@register
class Bert(BertLayout):
    model_type = "bert"
    config_class = BertConfig
    heads = {"mlm": BertForMaskedLM, "classification": BertForSequenceClassification,
             "qa": BertForQuestionAnswering, "pretraining": BertForPreTraining}
