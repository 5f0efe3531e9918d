"""Shared fixtures: tiny BERT models, a tiny offline tokenizer and the golden run of the tiny pipeline."""

from __future__ import annotations

import os

import pytest
import torch
from transformers import BertConfig, BertTokenizerFast

from pipeline.core.runtime import setup

WORDS = "the movie was good bad not very plot great awful and but".split()


def pytest_configure(config):
    """Under pytest-xdist (``-n 2``, tests/run.sh) each worker and every process it starts (``dvc repro``'s
    stages) uses one CPU thread: two workers on two cores would otherwise each start two threads per process."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


# Modules that read the golden run, longest first (the SSH and S3 round trips); the others follow in collection
# order. (RoBERTa end to end, about 200 s, has its own cache and runs beside the golden run.)
LONGEST_GOLDEN_READERS = ("tests/test_remotes.py",)


def pytest_collection_modifyitems(items):
    """Every end-to-end test is slow too, so ``-m "not slow"`` (the inner loop) leaves them all out.

    Modules are also put in the order that keeps the pytest-xdist workers (``--dist loadscope
    --no-loadscope-reorder``: a module's tests stay on one worker, modules handed out in this order) busy: first
    the module that builds the golden run, then the end-to-end modules that do not read it, the other slow
    modules and the rest, while the golden run is being built; last the modules that read it (the longest
    first), so no worker waits for it. Without xdist the order changes nothing a test sees: no test depends on
    another."""
    for item in items:
        if item.get_closest_marker("e2e") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)

    modules: dict[str, list] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    golden = [m for m, its in modules.items() if any("golden_repo" in i.fixturenames for i in its)]

    def rank(module: str) -> tuple[int, int]:
        its = modules[module]
        if golden and module == golden[0]:
            return 0, 0
        if module in golden:
            first = LONGEST_GOLDEN_READERS
            return 4, first.index(module) if module in first else len(first)
        if any(i.get_closest_marker("e2e") for i in its):
            return 1, 0
        return (2 if any(i.get_closest_marker("slow") for i in its) else 3), 0

    order = sorted(modules, key=rank)  # stable: collection order within a rank
    items[:] = [item for module in order for item in modules[module]]


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
