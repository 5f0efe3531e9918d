"""ELECTRA: BERT's layer layout under ``model.electra``; the discriminator is the encoder.

A discriminator checkpoint (``google/electra-*-discriminator``) loads its encoder into every head; its
replaced-token-detection head is not used. The ``mlm`` head is transformers' generator-style
``ElectraForMaskedLM`` on that encoder, freshly initialised when the checkpoint has none, so pretraining is
plain masked-LM training of the discriminator's encoder (not replaced-token detection). A checkpoint whose
``embedding_size`` differs from ``hidden_size`` keeps its ``embeddings_project`` (counted as embeddings).
"""

from __future__ import annotations

from transformers import (ElectraConfig, ElectraForMaskedLM, ElectraForQuestionAnswering,
                          ElectraForSequenceClassification)

from pipeline.models.families import register
from pipeline.models.families.bert import BertLayout


@register
class Electra(BertLayout):
    model_type = "electra"
    config_class = ElectraConfig
    heads = {"mlm": ElectraForMaskedLM, "classification": ElectraForSequenceClassification,
             "qa": ElectraForQuestionAnswering}
    embedding_parts = (".embeddings.", ".embeddings_project.")

    def config_kwargs(self, arch, vocab_size: int, pad_token_id: int) -> dict:
        # A config built here has no separate embedding width (ElectraConfig's default is 128).
        return {**super().config_kwargs(arch, vocab_size, pad_token_id), "embedding_size": arch.hidden_size}
