"""Structurally pruned BERT-family models for plain transformers.

A model whose attention heads or feed-forward neurons were physically removed has per-layer sizes that no
transformers config expresses. The pruned model's ``config.json`` records them (``heads_per_layer``,
``intermediate_per_layer``, one entry per layer) and names this file in its ``auto_map``, so

    AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True)

builds the family's own transformers model, resizes the pruned projections to the recorded sizes and loads
the weights: the result computes exactly what the pruned model computed. The file needs only ``torch`` and
``transformers``; ``CLASSES`` and ``LAYOUT`` below are written for the artifact's model family (where each
layer keeps its attention and feed-forward projections, as dotted paths).
"""

import torch
import transformers

CLASSES = {"config": "BertConfig", "mlm": "BertForMaskedLM", "classification": "BertForSequenceClassification",
           "qa": "BertForQuestionAnswering"}
LAYOUT = {"layers": "encoder.layer.*", "qkv": ["attention.self.query", "attention.self.key", "attention.self.value"],
          "qkv_blocks": 1, "attention_output": "attention.output.dense", "ffn_in": "intermediate.dense",
          "ffn_in_blocks": 1, "ffn_out": "output.dense", "head_size": "attention.self.attention_head_size",
          "head_count": "attention.self", "head_count_attrs": {"num_attention_heads": "heads", "all_head_size": "width"},
          "heads_key": "num_attention_heads", "ffn_key": "intermediate_size"}


def _resolve(root, path):
    """The modules at a dotted path under ``root`` (``*``: every child of a container, in order)."""
    found = [root]
    for part in path.split(".") if path else []:
        found = [child for m in found for child in (m.children() if part == "*" else [getattr(m, part)])]
    return found


def _optional(root, path):
    try:
        return _resolve(root, path)[0]
    except AttributeError:
        return None


def _resize(linear, in_features, out_features, std=0.02):
    """New parameters of shape ``(out_features, in_features)`` for ``linear`` (normal(0, std), zero bias),
    in place; ``from_pretrained`` then loads the stored weights into them."""
    like = linear.weight
    weight = torch.empty(out_features, in_features, device=like.device, dtype=like.dtype)
    linear.weight = torch.nn.Parameter(torch.nn.init.normal_(weight, std=std))
    if linear.bias is not None:
        linear.bias = torch.nn.Parameter(torch.zeros(out_features, device=like.device, dtype=like.dtype))
    linear.in_features, linear.out_features = in_features, out_features


def _resize_heads(layer, heads):
    module, _, attr = LAYOUT["head_size"].rpartition(".")
    size = int(getattr(_resolve(layer, module)[0], attr))
    for path in LAYOUT["qkv"]:
        proj = _optional(layer, path)
        if proj is not None:
            _resize(proj, proj.in_features, heads * size * LAYOUT["qkv_blocks"])
    out = _resolve(layer, LAYOUT["attention_output"])[0]
    _resize(out, heads * size, out.out_features)
    if LAYOUT["head_count_attrs"]:
        holder = _resolve(layer, LAYOUT["head_count"])[0]
        for name, kind in LAYOUT["head_count_attrs"].items():
            setattr(holder, name, heads if kind == "heads" else heads * size)


def _resize_ffn(layer, neurons):
    ffn_in, ffn_out = _resolve(layer, LAYOUT["ffn_in"])[0], _resolve(layer, LAYOUT["ffn_out"])[0]
    _resize(ffn_in, ffn_in.in_features, neurons * LAYOUT["ffn_in_blocks"])
    _resize(ffn_out, neurons, ffn_out.out_features)


def apply_pruned_shapes(model):
    """Resize every layer whose recorded size differs from the config's full size, in place."""
    config = model.config
    layers = _resolve(model.base_model, LAYOUT["layers"])
    heads = getattr(config, "heads_per_layer", None) or [getattr(config, LAYOUT["heads_key"])] * len(layers)
    neurons = getattr(config, "intermediate_per_layer", None) or [getattr(config, LAYOUT["ffn_key"])] * len(layers)
    if len(heads) != len(layers) or len(neurons) != len(layers):
        raise ValueError(f"config.json records sizes for {len(heads)}/{len(neurons)} layers, the model has {len(layers)}")
    for layer, h, n in zip(layers, heads, neurons):
        if h != getattr(config, LAYOUT["heads_key"]):
            _resize_heads(layer, int(h))
        if n != getattr(config, LAYOUT["ffn_key"]):
            _resize_ffn(layer, int(n))


class PrunedConfig(getattr(transformers, CLASSES["config"])):
    """The family's config; ``heads_per_layer`` and ``intermediate_per_layer`` hold the pruned sizes."""


class PrunedForMaskedLM(getattr(transformers, CLASSES["mlm"])):
    config_class = PrunedConfig

    def __init__(self, config, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        apply_pruned_shapes(self)


class PrunedForSequenceClassification(getattr(transformers, CLASSES["classification"])):
    config_class = PrunedConfig

    def __init__(self, config, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        apply_pruned_shapes(self)


class PrunedForQuestionAnswering(getattr(transformers, CLASSES["qa"])):
    config_class = PrunedConfig

    def __init__(self, config, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        apply_pruned_shapes(self)
