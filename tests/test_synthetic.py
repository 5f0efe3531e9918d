"""The synthetic generators and the deterministic tokenizer (the pipeline's offline default)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.data import synthetic
from pipeline.data.io import check_rows
from pipeline.data.sources import fetch
from pipeline.data.vocab import SPECIAL_TOKENS, build_tokenizer, vocabulary
from pipeline.core.errors import PipelineError
from pipeline.data.params import DataSource

QUESTION = re.compile(r"^(what|who) is the (.+) of (.+) \?$")


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def _facts(context: str) -> list[str]:
    """The facts of a context, without their trailing " ."."""
    assert context.endswith(" .")
    return context[: -len(" .")].split(" . ")


# --- determinism -----------------------------------------------------------------------------------


@pytest.mark.parametrize("gen", [synthetic.generate_classification, synthetic.generate_qa, synthetic.generate_corpus])
def test_same_seed_same_rows_other_seed_other_rows(gen):
    assert gen(200, 3) == gen(200, 3)
    assert gen(200, 3) != gen(200, 4)
    assert gen(50, 3) == gen(200, 3)[:50]  # rows depend on (n, seed) only: a shorter n is a prefix
    assert gen(0, 3) == []


def test_global_random_state_is_not_used():
    import random

    random.seed(1)
    first = synthetic.generate_classification(20, 0), synthetic.generate_qa(20, 0), synthetic.generate_corpus(20, 0)
    random.seed(2)
    random.random()
    assert (synthetic.generate_classification(20, 0), synthetic.generate_qa(20, 0), synthetic.generate_corpus(20, 0)) == first


@pytest.mark.parametrize("gen", [synthetic.generate_classification, synthetic.generate_qa, synthetic.generate_corpus])
def test_negative_n_rejected(gen):
    with pytest.raises(ValueError, match="n must be"):
        gen(-1, 0)


# --- classification ----------------------------------------------------------------------------------


def test_classification_schema():
    rows = synthetic.generate_classification(500, 0)
    check_rows(rows, "classification", "test")
    assert [r["idx"] for r in rows] == list(range(500))
    for r in rows:
        assert set(r) == {"sentence", "label", "idx"}
        assert type(r["sentence"]) is str and type(r["label"]) is int and type(r["idx"]) is int
        assert r["label"] in (0, 1)
        assert r["sentence"] == r["sentence"].lower() == " ".join(r["sentence"].split())
        assert 0 < len(r["sentence"].split()) < 30
    assert len({r["sentence"] for r in rows}) > 450  # varied, not a handful of templates


@pytest.mark.parametrize("seed", [0, 1, 1001, 1002])
def test_classification_labels_balanced(seed):
    rows = synthetic.generate_classification(2000, seed)
    share = sum(r["label"] for r in rows) / len(rows)
    assert 0.4 <= share <= 0.6


def test_classification_label_follows_negated_polarity():
    """Recompute each label from the word lists: the sign of the summed (possibly negated) polarities."""
    positive, negative = set(synthetic._POSITIVE), set(synthetic._NEGATIVE)
    for r in synthetic.generate_classification(500, 7):
        tokens = r["sentence"].split()
        total, phrases = 0, 0
        for i, tok in enumerate(tokens):
            if tok in positive or tok in negative:
                polarity = 1 if tok in positive else -1
                total += -polarity if i and tokens[i - 1] == "not" else polarity
                phrases += 1
        assert phrases in (1, 3)
        assert r["label"] == int(total > 0)


def _features(sentences: list[str], index: dict[str, int]) -> np.ndarray:
    """Bag of words plus "not <word>" bigrams, with a bias column."""
    x = np.zeros((len(sentences), len(index) + 1))
    x[:, -1] = 1.0
    for row, sentence in enumerate(sentences):
        tokens = sentence.split()
        for i, tok in enumerate(tokens):
            x[row, index[tok]] += 1
            if i and tokens[i - 1] == "not":
                x[row, index["not " + tok]] += 1
    return x


def _logistic_accuracy(train: list[dict], test: list[dict], bigrams: bool) -> float:
    keys = synthetic.words() + [f"not {w}" for w in synthetic.words()]
    index = {k: i for i, k in enumerate(keys)}
    x_tr = _features([r["sentence"] for r in train], index)
    x_te = _features([r["sentence"] for r in test], index)
    if not bigrams:
        x_tr[:, len(synthetic.words()) : -1] = 0
        x_te[:, len(synthetic.words()) : -1] = 0
    y = np.array([r["label"] for r in train], dtype=float)
    w = np.zeros(x_tr.shape[1])
    for _ in range(400):  # full-batch gradient descent on the logistic loss
        p = 1 / (1 + np.exp(-(x_tr @ w)))
        w -= 0.5 * x_tr.T @ (p - y) / len(y)
    predicted = (x_te @ w > 0).astype(int)
    return float((predicted == np.array([r["label"] for r in test])).mean())


def test_classification_is_learnable_but_needs_negation():
    train = synthetic.generate_classification(2000, 11)
    test = synthetic.generate_classification(500, 12)
    with_negation = _logistic_accuracy(train, test, bigrams=True)
    words_only = _logistic_accuracy(train, test, bigrams=False)
    assert with_negation > 0.8
    # Negation matters: a plain bag of words cannot see which adjectives "not" flips.
    assert words_only < with_negation - 0.05


# --- question answering ------------------------------------------------------------------------------


def test_qa_schema_and_ids():
    rows = synthetic.generate_qa(500, 5)
    check_rows(rows, "qa", "test")
    assert len({r["id"] for r in rows}) == len(rows)
    assert rows[0]["id"] == "q5-0"
    for r in rows:
        assert set(r) == {"id", "title", "context", "question", "answers"}
        assert all(type(r[k]) is str for k in ("id", "title", "context", "question"))
        assert set(r["answers"]) == {"text", "answer_start"}
        (text,), (start,) = r["answers"]["text"], r["answers"]["answer_start"]
        assert type(text) is str and type(start) is int
        assert r["title"] and r["title"] in r["context"]
        assert 3 <= len(_facts(r["context"])) <= 5
        assert len(r["context"].split()) < 60


def test_qa_answer_offsets_point_into_the_asked_fact():
    rows = synthetic.generate_qa(1000, 9)
    repeated_value = 0
    for r in rows:
        (text,), (start,) = r["answers"]["text"], r["answers"]["answer_start"]
        context = r["context"]
        assert context[start : start + len(text)] == text
        _, relation, entity = QUESTION.match(r["question"]).groups()
        prefix = f"the {relation} of {entity} is "
        # The answer is the value of the asked fact, not another occurrence of the same word.
        assert context[start - len(prefix) : start] == prefix
        assert context[start + len(text) :].startswith(" .")
        assert start == len(prefix) or context[start - len(prefix) - 2 : start - len(prefix)] == ". "
        repeated_value += context.count(text) > 1
    assert repeated_value > 0  # the offset logic is exercised where a naive str.find could be wrong


def test_qa_asked_pair_unique_and_distractors_present():
    rows = synthetic.generate_qa(1000, 2)
    distractors = 0
    for r in rows:
        _, relation, entity = QUESTION.match(r["question"]).groups()
        facts = _facts(r["context"])
        pairs = [f.rsplit(" is ", 1)[0] for f in facts]
        assert len(set(pairs)) == len(pairs)  # no (relation, entity) pair is stated twice
        assert pairs.count(f"the {relation} of {entity}") == 1
        distractors += sum(p.startswith(f"the {relation} of ") for p in pairs) > 1
    assert 0.3 < distractors / len(rows) < 0.8


def test_qa_domain_size():
    entities = {e for _, ents, _, _ in synthetic._RELATIONS for e in ents}
    values = {v for _, _, vals, _ in synthetic._RELATIONS for v in vals}
    assert len(synthetic._RELATIONS) >= 6 and len(entities) >= 60 and len(values) >= 60
    assert all(" " not in v for v in values)


# --- corpus and words ------------------------------------------------------------------------------


def test_corpus_mixes_both_domains_and_is_not_the_train_set():
    lines = synthetic.generate_corpus(400, 0)
    assert len(lines) == 400 and all(type(line) is str and line.strip() for line in lines)
    facts = sum(line.startswith("the ") and " of " in line and line.count(" . ") >= 2 for line in lines)
    assert 0.3 < facts / len(lines) < 0.7
    train = {r["sentence"] for r in synthetic.generate_classification(400, 0)}
    contexts = {r["context"] for r in synthetic.generate_qa(400, 0)}
    assert len(set(lines) & (train | contexts)) < 20


def test_words_cover_every_generated_token():
    vocab = synthetic.words()
    assert vocab == sorted(set(vocab))
    assert all(w and w == w.strip().lower() and " " not in w for w in vocab)
    assert {",", ".", "?", "not"} <= set(vocab)
    seen = set()
    for seed in (0, 1):
        seen |= {t for r in synthetic.generate_classification(2000, seed) for t in r["sentence"].split()}
        for r in synthetic.generate_qa(2000, seed):
            seen |= set(r["context"].split()) | set(r["question"].split())
        seen |= {t for line in synthetic.generate_corpus(1000, seed) for t in line.split()}
    assert seen <= set(vocab)


# --- tokenizer -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return build_tokenizer(tmp_path_factory.mktemp("tok"))


def test_tokenizer_files_byte_identical(tmp_path):
    build_tokenizer(tmp_path / "a")
    build_tokenizer(tmp_path / "b")
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert {"vocab.txt", "tokenizer.json", "tokenizer_config.json"} <= set(a)
    assert a == b


def test_tokenizer_identical_in_another_process(tmp_path):
    """A fresh interpreter with another hash seed (set and dict order) writes the same bytes."""
    build_tokenizer(tmp_path / "here")
    code = "import sys; from pipeline.data.vocab import build_tokenizer; build_tokenizer(sys.argv[1])"
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "there")], check=True, env=env)
    assert _files(tmp_path / "here") == _files(tmp_path / "there")


def test_vocabulary_layout(tmp_path, tok):
    lines = vocabulary()
    assert lines[: len(SPECIAL_TOKENS)] == list(SPECIAL_TOKENS)
    assert len(lines) == len(set(lines)) == len(tok)
    assert tok.pad_token_id == 0 and tok.mask_token == "[MASK]" and tok.model_max_length == 512
    assert {"a", "z", "0", "9", "##a", "##z", "##0", "##9"} <= set(lines)
    assert set(synthetic.words()) <= set(lines)
    build_tokenizer(tmp_path)
    assert (tmp_path / "vocab.txt").read_text().splitlines() == lines
    assert tok.convert_tokens_to_ids(lines) == list(range(len(lines)))


def test_extra_words(tmp_path):
    extra = build_tokenizer(tmp_path, extra_words=["Zebra", "velmora", "zebra"])
    assert len(extra) == len(vocabulary()) + 1
    assert extra.tokenize("ZEBRA") == ["zebra"]
    with pytest.raises(ValueError):
        vocabulary(["two words"])


def test_no_unknown_tokens_on_generated_text(tok):
    texts = [r["sentence"] for r in synthetic.generate_classification(300, 0)]
    for r in synthetic.generate_qa(300, 0):
        texts += [r["context"], r["question"]]
    texts += synthetic.generate_corpus(300, 0)
    for ids in tok(texts)["input_ids"]:
        assert tok.unk_token_id not in ids
    # Every generated word is one whole token: the models see words, not pieces.
    for text in texts[:50]:
        assert tok.tokenize(text) == text.split()


def test_unseen_words_split_into_pieces(tok):
    pieces = tok.tokenize("Qwxyz 42!")
    assert tok.unk_token not in pieces
    assert tok.convert_tokens_to_string(pieces) == "qwxyz 42!"


def test_offsets_locate_qa_answer(tok):
    r = synthetic.generate_qa(20, 4)[3]
    (text,), (start,) = r["answers"]["text"], r["answers"]["answer_start"]
    enc = tok(r["question"], r["context"], return_offsets_mapping=True)
    seq = enc.sequence_ids()
    hits = [
        i for i, (s, e) in enumerate(enc["offset_mapping"]) if seq[i] == 1 and s <= start < e
    ]
    assert len(hits) == 1
    s, e = enc["offset_mapping"][hits[0]]
    assert r["context"][s:e] == text
    assert tok.convert_ids_to_tokens(enc["input_ids"][hits[0]]) == text


# --- question answering, SQuAD v2 style ----------------------------------------------------------------


def test_unanswerable_fraction_default_keeps_v1_rows():
    assert synthetic.generate_qa(300, 4, unanswerable_fraction=0.0) == synthetic.generate_qa(300, 4)
    assert all(r["answers"]["text"] for r in synthetic.generate_qa(300, 4))
    with pytest.raises(ValueError, match="unanswerable_fraction"):
        synthetic.generate_qa(10, 0, unanswerable_fraction=1.0)


def test_unanswerable_questions_ask_what_the_context_does_not_state():
    rows = synthetic.generate_qa(1000, 6, unanswerable_fraction=0.4)
    check_rows(rows, "qa", "test")
    assert rows == synthetic.generate_qa(1000, 6, unanswerable_fraction=0.4)
    none = [r for r in rows if not r["answers"]["text"]]
    assert 0.33 < len(none) / len(rows) < 0.47
    for r in rows:
        _, relation, entity = QUESTION.match(r["question"]).groups()
        pairs = [f.rsplit(" is ", 1)[0] for f in _facts(r["context"])]
        stated = f"the {relation} of {entity}" in pairs
        assert stated == bool(r["answers"]["text"])
        if not stated:
            assert r["answers"] == {"text": [], "answer_start": []}
            # A hard negative: the asked relation is in the context, for another entity.
            assert any(p.startswith(f"the {relation} of ") for p in pairs)


def test_qa_schema_accepts_empty_answers_but_not_malformed_ones():
    rows = synthetic.generate_qa(5, 0)
    rows[3]["answers"] = {"text": [], "answer_start": []}  # unanswerable: valid
    check_rows(rows, "qa", "test")
    rows[4]["answers"] = {"text": ["x"], "answer_start": []}
    with pytest.raises(PipelineError, match="row 4 .*'q0-4'.*equal length"):
        check_rows(rows, "qa", "test")
    rows[4]["answers"] = "x"
    with pytest.raises(PipelineError, match="row 4"):
        check_rows(rows, "qa", "test")


def test_fetch_synthetic_v2_and_params_validation():
    src = DataSource(type="qa", train_size=200, validation_size=100, unanswerable_fraction=0.5)
    data = fetch(src, "qa", seed=0)
    assert {split: len(rows) for split, rows in data.items()} == {"train": 200, "validation": 100}
    assert any(not r["answers"]["text"] for r in data["validation"])
    for bad in (dict(type="qa", unanswerable_fraction=1.0), dict(type="classification", unanswerable_fraction=0.1),
                dict(type="qa", source="some/dir", unanswerable_fraction=0.1)):
        with pytest.raises(ValueError, match="unanswerable_fraction"):
            DataSource(train_size=1, validation_size=1, **bad)
