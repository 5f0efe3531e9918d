"""XLM-RoBERTa: RoBERTa's layout and position offset (:mod:`.roberta`) with its own transformers classes."""

from __future__ import annotations

from transformers import (XLMRobertaConfig, XLMRobertaForMaskedLM, XLMRobertaForQuestionAnswering,
                          XLMRobertaForSequenceClassification)

from pipeline.models.families import register
from pipeline.models.families.roberta import Roberta


@register
class XLMRoberta(Roberta):
    model_type = "xlm-roberta"
    config_class = XLMRobertaConfig
    heads = {"mlm": XLMRobertaForMaskedLM, "classification": XLMRobertaForSequenceClassification,
             "qa": XLMRobertaForQuestionAnswering}
