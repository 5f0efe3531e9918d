"""Tiny offline models, tokenizers and data for every model family (used by the family tests and the bench).

Tokenizers of three conventions, all over the synthetic vocabulary so every family reads the same data:

- ``wordpiece``: the pipeline's synthetic BERT tokenizer (``[CLS] a [SEP] b [SEP]``, segment ids);
- ``wordpiece_no_types``: the same vocabulary without segment ids (DistilBERT's convention);
- ``bpe``: byte-level BPE with RoBERTa's ``<s> a </s></s> b </s>`` and trimmed offsets;
- ``bpe_template``: byte-level BPE with ModernBERT's ``[CLS] a [SEP] b [SEP]`` template and offsets that keep
  the space before a word (the untrimmed byte-level convention).
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.data import synthetic
from pipeline.data.io import write_jsonl
from pipeline.models.families import FAMILIES

# The tokenizer convention of the families whose real checkpoints do not ship a WordPiece tokenizer with segment
# ids; every other registered family (a new one too) is tested with ``wordpiece``.
OTHER_TOKENIZER = {"roberta": "bpe", "xlm-roberta": "bpe", "distilbert": "wordpiece_no_types",
                   "deberta-v2": "wordpiece_no_types", "modernbert": "bpe_template"}
FAMILY_TOKENIZER = {name: OTHER_TOKENIZER.get(name, "wordpiece") for name in FAMILIES.names()}
"""The tokenizer convention of every registered family (:data:`pipeline.models.families.FAMILIES`)."""
TINY = {"hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 4, "intermediate_size": 64,
        "max_position_embeddings": 128}


def _bpe_texts() -> list[str]:
    words = sorted(synthetic.words())
    corpus = synthetic.generate_corpus(300, 0)
    return corpus + [" ".join(words[i:i + 12]) for i in range(0, len(words), 4)]


def bpe_tokenizer(out: Path, template: bool) -> None:
    """Train a small byte-level BPE tokenizer on synthetic text and save it to ``out`` (a fast tokenizer)."""
    from tokenizers import ByteLevelBPETokenizer, processors
    from transformers import PreTrainedTokenizerFast, RobertaTokenizerFast

    specials = ["[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"] if template else ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe = ByteLevelBPETokenizer(add_prefix_space=False, trim_offsets=not template)
    bpe.train_from_iterator(_bpe_texts(), vocab_size=1200, min_frequency=1, special_tokens=specials, show_progress=False)
    raw = bpe._tokenizer
    if template:
        cls, sep = ("[CLS]", 0), ("[SEP]", 2)
        raw.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                                           special_tokens=[cls, sep])
        tok = PreTrainedTokenizerFast(tokenizer_object=raw, cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]",
                                      unk_token="[UNK]", mask_token="[MASK]", model_input_names=["input_ids", "attention_mask"])
    else:
        raw.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True)
        tok = RobertaTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                   cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    tok.model_max_length = 512
    tok.save_pretrained(str(out))


def make_tokenizer(out: Path, style: str) -> Path:
    """Write a tokenizer of ``style`` (see the module doc) to ``out``; returns ``out``."""
    from pipeline.data.vocab import build_tokenizer

    if style.startswith("wordpiece"):
        build_tokenizer(out)
        if style == "wordpiece_no_types":
            config = json.loads((out / "tokenizer_config.json").read_text())
            config["model_input_names"] = ["input_ids", "attention_mask"]
            (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    else:
        bpe_tokenizer(out, template=style == "bpe_template")
    return out


def make_data(root: Path, sizes: dict[str, tuple[int, int]] | None = None) -> Path:
    """Synthetic ``corpus``, ``cls`` and ``qa`` splits under ``root`` (``train.jsonl``, ``validation.jsonl``)."""
    sizes = sizes or {"corpus": (64, 16), "cls": (64, 16), "qa": (32, 8)}
    makers = {"corpus": lambda n, s: [{"text": t} for t in synthetic.generate_corpus(n, s)],
              "cls": synthetic.generate_classification, "qa": synthetic.generate_qa}
    for name, (train, valid) in sizes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        write_jsonl(root / name / "train.jsonl", makers[name](train, 0))
        write_jsonl(root / name / "validation.jsonl", makers[name](valid, 1))
    return root
