"""Shared fixtures: tiny BERT models and a tiny offline tokenizer."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertTokenizerFast

from pipeline.core.runtime import setup

WORDS = "the movie was good bad not very plot great awful and but".split()


@pytest.fixture(autouse=True, scope="session")
def _quiet():
    setup(0)


@pytest.fixture
def tiny_config() -> BertConfig:
    return BertConfig(
        vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=64, pad_token_id=0,
    )


@pytest.fixture
def tokenizer(tmp_path) -> BertTokenizerFast:
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, ".", ",", "?"]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n")
    return BertTokenizerFast(vocab=str(path))


def seeded(seed: int = 0) -> None:
    torch.manual_seed(seed)
