"""RoBERTa: BERT's layer layout under ``model.roberta``, with one segment embedding.

Position ids start after ``pad_token_id`` (RoBERTa counts positions from ``padding_idx + 1``), so a model
built from ``model.max_position_embeddings`` gets ``pad_token_id + 1`` extra rows to keep that many usable
positions. Segment ids are never fed (``type_vocab_size`` 1), whatever the tokenizer makes.
"""

from __future__ import annotations

from transformers import (RobertaConfig, RobertaForMaskedLM, RobertaForQuestionAnswering,
                          RobertaForSequenceClassification)

from pipeline.models.families import register
from pipeline.models.families.bert import BertLayout


@register
class Roberta(BertLayout):
    model_type = "roberta"
    config_class = RobertaConfig
    heads = {"mlm": RobertaForMaskedLM, "classification": RobertaForSequenceClassification,
             "qa": RobertaForQuestionAnswering}

    def config_kwargs(self, arch, vocab_size: int, pad_token_id: int) -> dict:
        kwargs = super().config_kwargs(arch, vocab_size, pad_token_id)
        kwargs.update(max_position_embeddings=arch.max_position_embeddings + pad_token_id + 1, type_vocab_size=1)
        return kwargs

