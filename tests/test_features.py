"""Batching and MLM masking."""

import torch

from pipeline.data.features import collate, mask_tokens


def test_collate_pads_to_longest():
    batch = collate([{"input_ids": [2, 5, 3], "attention_mask": [1, 1, 1], "labels": 1},
                     {"input_ids": [2, 3], "attention_mask": [1, 1], "labels": 0}], pad_id=0)
    assert batch["input_ids"].tolist() == [[2, 5, 3], [2, 3, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [1, 0]


def test_mask_tokens_rate_and_specials():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 100, (64, 128), generator=g)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = True
    inputs, labels = mask_tokens(ids, special, mask_id=4, vocab_size=100, probability=0.15, generator=g)
    chosen = labels != -100
    assert abs(chosen.float().mean().item() - 0.15) < 0.01
    assert not chosen[:, 0].any()  # specials never masked
    assert torch.equal(labels[chosen], ids[chosen])
    masked_share = (inputs[chosen] == 4).float().mean().item()
    assert 0.75 < masked_share < 0.85
    assert torch.equal(inputs[~chosen], ids[~chosen])


def test_mask_tokens_is_reproducible():
    ids = torch.arange(200).view(2, 100) + 10
    special = torch.zeros_like(ids, dtype=torch.bool)
    a = mask_tokens(ids, special, 4, 300, 0.2, torch.Generator().manual_seed(7))
    b = mask_tokens(ids, special, 4, 300, 0.2, torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


# ------------------------------------------------------------------------------ columnar features
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from pipeline.data import synthetic  # noqa: E402
from pipeline.data.features import Features, encode_text, feature_lengths  # noqa: E402
from pipeline.data.tokenizer import load_tokenizer  # noqa: E402
from pipeline.tasks import classification, qa, squad  # noqa: E402


@pytest.fixture(scope="module")
def toks(tmp_path_factory):
    """The synthetic WordPiece tokenizer, RoBERTa-style and ModernBERT-style byte-level BPE, and WordPiece
    padding on the left (QA windows then come padded to max_length)."""
    from family_kit import make_tokenizer

    root = tmp_path_factory.mktemp("toks")
    out = {s: load_tokenizer(make_tokenizer(root / s, s)) for s in ("wordpiece", "bpe", "bpe_template")}
    out["wordpiece_left"] = load_tokenizer(root / "wordpiece")
    out["wordpiece_left"].padding_side = "left"
    return out


def same_features(new, old: list[dict]) -> None:
    """Equal features, key order and Python value types included (what collate and the loop see)."""
    got = list(new)
    assert len(new) == len(old) == len(got)
    for a, b in zip(got, old):
        assert list(a) == list(b)
        assert a == b
        assert [type(v) for v in a.values()] == [type(v) for v in b.values()]


def test_features_sequence_protocol():
    parts = [{"input_ids": [[5, 6, 7], [8]], "attention_mask": [[1, 1, 1], [1]], "labels": [1, 0]},
             {"input_ids": [[9, 10]], "attention_mask": [[1, 1]], "labels": [2]}]
    feats = Features.from_batches(iter(parts), {"labels": np.int64})
    assert len(feats) == 3 and feats.lengths.tolist() == [3, 1, 2]
    assert feats[2] == {"input_ids": [9, 10], "attention_mask": [1, 1], "labels": 2}
    assert feats[-3] == feats[0] and type(feats[0]["labels"]) is int
    with pytest.raises(IndexError):
        feats[3]
    view = feats[1:]
    assert isinstance(view, Features) and [f["input_ids"] for f in view] == [[8], [9, 10]]
    assert view.lengths.tolist() == [1, 2] and len(feats[5:]) == 0 and len(feats[:0]) == 0
    assert [f["labels"] for f in feats[::-1]] == [2, 0, 1]
    assert list(feats[::2]) == [feats[0], feats[2]]
    assert feats.tokens["input_ids"].dtype == np.int32
    # the training loop's lengths: from the offsets for the store, per feature for a plain list; the same ints
    assert feature_lengths(feats) == feature_lengths(list(feats)) == [3, 1, 2]
    assert all(type(n) is int for n in feature_lengths(feats))
    empty = Features.from_batches(iter([]), {})
    assert len(empty) == 0 and list(empty) == []
    with pytest.raises(ValueError):  # a per-token column whose lengths differ from input_ids'
        Features.from_batches(iter([{"input_ids": [[1, 2]], "attention_mask": [[1]]}]), {})


@pytest.mark.parametrize("style", ["wordpiece", "bpe", "bpe_template"])
@pytest.mark.parametrize("layout", ["single", "pair", "regression"])
def test_classification_features_equal_one_tokenizer_call(toks, style, layout):
    """Batched encoding into columns gives exactly the features of the former one-call list encoding."""
    tok = toks[style]
    rows = synthetic.generate_classification(23, 5)
    columns = ("sentence",)
    if layout != "single":
        columns = ("sentence1", "sentence2")
        rows = [{"sentence1": r["sentence"], "sentence2": " ".join([rows[i - 1]["sentence"]] * (1 + i % 3)),
                 "label": r["label"] + (0.5 if layout == "regression" else 0)} for i, r in enumerate(rows)]
    regression, longest = layout == "regression", 14 if layout == "single" else 40
    first = [r[columns[0]] for r in rows]
    second = [r[columns[1]] for r in rows] if len(columns) > 1 else None
    enc = tok(first, second, truncation=True, max_length=longest)  # the former encode: one call, then per-row dicts
    old = [{**{k: enc[k][i] for k in enc.keys()}, "labels": float(r["label"]) if regression else int(r["label"])}
           for i, r in enumerate(rows)]
    assert any(len(f["input_ids"]) == longest for f in old) and len({len(f["input_ids"]) for f in old}) > 3
    for batch_size in (1, 7, 4096):
        same_features(classification.encode(rows, tok, longest, columns, regression, batch_size=batch_size), old)


@pytest.mark.parametrize("style", ["wordpiece", "bpe", "bpe_template", "wordpiece_left"])
def test_qa_windows_equal_one_tokenizer_call(toks, style):
    """Windows, labels and padding of batched QA training features equal the one-call preparation's, for
    contexts spanning several windows and unanswerable questions."""
    tok = toks[style]
    rows = synthetic.generate_qa(17, 2, unanswerable_fraction=0.3)
    rows[3] = {**rows[3], "context": rows[3]["context"] + " " + rows[4]["context"]}  # even longer
    old = qa.encode_features(squad.prepare_train_features(rows, tok, 40, 12), with_labels=True)
    assert len(old) > len(rows) + 5  # several windows per context
    assert any(f["start_positions"] > 0 for f in old) and any(f["start_positions"] == 0 for f in old)
    for batch_size in (1, 3, 4096):
        same_features(qa.train_windows(rows, tok, 40, 12, batch_size=batch_size), old)
    task = qa.QATask(qa.QAParams(type="qa", max_length=40, doc_stride=12, version_2_with_negative=True))
    same_features(task.train_features(rows, tok), old)


def test_mlm_text_features_equal_one_tokenizer_call(toks):
    tok = toks["wordpiece"]
    rows = [{"text": line} for line in synthetic.generate_corpus(30, 1)]
    enc = tok([r["text"] for r in rows], truncation=True, max_length=16)
    old = [{k: enc[k][i] for k in ("input_ids", "attention_mask")} for i in range(len(rows))]
    same_features(encode_text(rows, tok, 16, batch_size=4), old)


def test_collate_of_columnar_features_equals_lists(toks):
    tok = toks["wordpiece"]
    rows = synthetic.generate_classification(9, 1)
    feats = classification.encode(rows, tok, 32, batch_size=2)
    old = [dict(f) for f in feats]
    a, b = collate([feats[i] for i in (4, 0, 7)], 0), collate([old[i] for i in (4, 0, 7)], 0)
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)


@pytest.mark.parametrize("kind", ["classification", "qa"])
def test_a_training_run_encodes_each_split_once(tmp_path, kind):
    """trainer() counts steps and trains on one encoding of the train split; the epochs' scoring and validation
    loss share one encoding of the validation split (QA: one labelled and one with offsets)."""
    from transformers import BertConfig, BertForQuestionAnswering, BertForSequenceClassification

    from pipeline import tasks
    from pipeline.config.args import TrainArgs
    from pipeline.data.io import write_jsonl
    from pipeline.data.vocab import build_tokenizer
    from pipeline.tasks.classification import ClassificationParams
    from pipeline.tasks.qa import QAParams
    from pipeline.train.supervised import trainer

    tok = build_tokenizer(tmp_path / "tok")
    make = synthetic.generate_classification if kind == "classification" else synthetic.generate_qa
    write_jsonl(tmp_path / "train.jsonl", make(24, 1))
    write_jsonl(tmp_path / "validation.jsonl", make(8, 2))
    params = ClassificationParams(max_length=48) if kind == "classification" else QAParams(type="qa", max_length=64, doc_stride=16)
    task = tasks.get(params)
    encoded: list[int] = []  # rows of every tokenizer pass: train_features and QA's eval windows
    for name in ("train_features", "eval_features"):
        original = getattr(task, name)

        def counted(rows, tokenizer, *rest, _original=original, _name=name):
            out = _original(rows, tokenizer, *rest)
            if _name == "train_features" or kind == "qa":
                encoded.append(len(rows))
            return out

        setattr(task, name, counted)
    head = BertForSequenceClassification if kind == "classification" else BertForQuestionAnswering
    torch.manual_seed(0)
    model = head(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=32, max_position_embeddings=128, pad_token_id=tok.pad_token_id))
    train = trainer(task, tmp_path, tok, TrainArgs(epochs=3, batch_size=8, seed=0), torch.device("cpu"), "t")
    history = train(model, lambda total: (lambda m: None))["history"]
    assert len(history) == 3 and all("val_loss" in h for h in history)
    assert sorted(encoded) == ([8, 24] if kind == "classification" else [8, 8, 24])


@pytest.mark.parametrize("count", [1, 5, 16, 100])
def test_first_features_encode_only_the_rows_they_need(toks, count):
    tok = toks["wordpiece"]
    cls_task = classification.ClassificationTask(classification.ClassificationParams(max_length=32))
    qa_task = qa.QATask(qa.QAParams(type="qa", max_length=40, doc_stride=12))
    for task, rows in ((cls_task, synthetic.generate_classification(20, 3)), (qa_task, synthetic.generate_qa(20, 3))):
        whole = task.train_features(rows, tok)
        first = task.first_features(rows, tok, count)
        assert list(first) == list(whole[:count]) and len(first) == min(count, len(whole))
