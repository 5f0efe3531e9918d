"""ModernBERT: ``model.model.layers[i]`` with a fused attention input and a gated (GLU) feed-forward network.

Each layer: ``attn.Wqkv`` stacks the query, key and value projections (three head-major blocks, no bias),
``attn.Wo`` reads the heads; ``mlp.Wi`` stacks the GLU's input and gate projections (neuron ``i`` is rows
``i`` and ``i + I``), ``mlp.Wo`` reads the neurons. Layers alternate global and sliding-window attention
(``config.layer_types``); the first layer has no attention LayerNorm. No segment embeddings, rotary
positions, a final LayerNorm after the layers (counted with the embeddings).
"""

from __future__ import annotations

import re

from transformers import (ModernBertConfig, ModernBertForMaskedLM, ModernBertForQuestionAnswering,
                          ModernBertForSequenceClassification)

from pipeline.core.errors import PipelineError
from pipeline.models.families import register
from pipeline.models.families.base import Family


@register
class ModernBert(Family):
    model_type = "modernbert"
    config_class = ModernBertConfig
    heads = {"mlm": ModernBertForMaskedLM, "classification": ModernBertForSequenceClassification,
             "qa": ModernBertForQuestionAnswering}
    layers_path = "layers.*"
    qkv_paths = ("attn.Wqkv",)
    qkv_blocks = 3
    attention_output_path = "attn.Wo"
    ffn_in_path = "mlp.Wi"
    ffn_in_blocks = 2
    ffn_out_path = "mlp.Wo"
    head_size_path = "attn.head_dim"
    layer_pattern = re.compile(r"(?:^|\.)layers\.(\d+)\.(attn_norm|attn|mlp_norm|mlp)\.")
    attention_sublayers = ("attn_norm", "attn")
    embedding_parts = (".embeddings.", ".final_norm.")

    def config_kwargs(self, arch, vocab_size: int, pad_token_id: int) -> dict:
        # The hub config's special-token ids belong to its own vocabulary: unset them for another one.
        return {**super().config_kwargs(arch, vocab_size, pad_token_id), "bos_token_id": None,
                "eos_token_id": None, "cls_token_id": None, "sep_token_id": None}

    def check_structural(self, model, what: str, keep: list[int] | None = None) -> None:
        if what == "layers" and keep is not None and 0 not in keep:
            raise PipelineError("ModernBERT's first layer has no attention LayerNorm: layer dropping must keep "
                                "layer 0")

    def after_drop(self, model, keep: list[int]) -> None:
        config = model.config
        config.layer_types = [config.layer_types[i] for i in keep]
