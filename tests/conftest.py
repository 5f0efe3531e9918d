"""Shared fixtures: tiny BERT models, a tiny offline tokenizer and the golden run of the tiny pipeline."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertTokenizerFast

from pipeline.core.runtime import setup

WORDS = "the movie was good bad not very plot great awful and but".split()


def pytest_collection_modifyitems(items):
    """Every end-to-end test is slow too, so ``-m "not slow"`` (the inner loop) leaves them all out."""
    for item in items:
        if item.get_closest_marker("e2e") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


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


@pytest.fixture(scope="session")
def golden_repo(tmp_path_factory):
    """The session's golden run of the tiny pipeline (tests/golden.py), built once (across pytest-xdist workers
    too); tests read it and never change it: they change a ``golden.work_copy`` of it."""
    from filelock import FileLock

    import golden

    root = golden.shared_root(tmp_path_factory) / "golden"
    root.mkdir(exist_ok=True)
    with FileLock(str(root / "build.lock")):
        return golden.golden_run(root)


@pytest.fixture(scope="session")
def placeholder_repo(tmp_path_factory):
    """A clean copy of the repository (shipped params) whose every stage output is a placeholder committed to DVC
    (tests/placeholders.py): ``dvc status`` is clean. Read-only; tests that edit take a ``placeholder_copy``."""
    import subprocess

    from clean_copy import clean_copy
    from placeholders import commit_placeholders

    repo = clean_copy(tmp_path_factory.mktemp("placeholders") / "repo")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    return commit_placeholders(repo)


def seeded(seed: int = 0) -> None:
    torch.manual_seed(seed)
