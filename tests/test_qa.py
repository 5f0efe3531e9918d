"""QA features and span post-processing, on an offline word-level BERT tokenizer and hand-set logits."""

import string

import numpy as np
import pytest
from transformers import BertTokenizerFast

from pipeline.tasks.squad import postprocess_predictions, postprocess_predictions_v2, prepare_eval_features, prepare_train_features

WORDS = "the cat sat on mat a big brown dog ran to green park where did run".split()

CONTEXT = "The cat sat on the mat. A big brown dog ran to the green park."
QUESTION = "Where did the dog run?"
ANSWER = "the green park"
# Four 7-token filler sentences, then the 10-token answer sentence: 38 context tokens.
LONG_CONTEXT = "The cat sat on the mat. " * 4 + "A big brown dog ran to the green park."

LOW = -10.0  # baseline logit: any span touching a baseline position loses to one between two peaks


def make_tokenizer(tmp_path, **kwargs) -> BertTokenizerFast:
    letters = [c for c in string.ascii_lowercase if c not in WORDS]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, ".", ",", "?", *letters]
    vocab += ["##" + c for c in string.ascii_lowercase]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n")
    # transformers 5 takes the vocabulary as `vocab`; `vocab_file=` is silently ignored there, leaving a
    # tokenizer that maps every word to [UNK] -- hence the check below.
    tok = BertTokenizerFast(vocab=str(path), **kwargs)
    assert tok.convert_ids_to_tokens(tok("the green park")["input_ids"]) == ["[CLS]", "the", "green", "park", "[SEP]"]
    return tok


@pytest.fixture
def tok(tmp_path) -> BertTokenizerFast:
    return make_tokenizer(tmp_path)


def example(context=CONTEXT, answer=ANSWER, qid="q1") -> dict:
    start = context.index(answer)
    return {"id": qid, "title": "t", "context": context, "question": QUESTION,
            "answers": {"text": [answer], "answer_start": [start]}}


def token_at(offsets, char: int) -> int:
    """The context token whose offsets start at ``char``."""
    (k,) = [k for k, o in enumerate(offsets) if o is not None and o[0] == char]
    return k


def base_logits(features) -> tuple[np.ndarray, np.ndarray]:
    # features are unpadded (lengths differ); logits are padded to the longest, as the model's batches are
    shape = (len(features["input_ids"]), max(len(ids) for ids in features["input_ids"]))
    return np.full(shape, LOW), np.full(shape, LOW)


# --------------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------------


def test_eval_features_mark_only_context_tokens(tok):
    feats = prepare_eval_features([example()], tok, max_length=40, doc_stride=8)
    assert set(feats) == {"input_ids", "attention_mask", "token_type_ids", "example_id", "offset_mapping", "cls_index"}
    assert feats["cls_index"] == [0]
    assert feats["example_id"] == ["q1"]
    ids, offsets = feats["input_ids"][0], feats["offset_mapping"][0]
    assert len(ids) == len(offsets) <= 40  # not padded: batches are padded when collated
    tokens = tok.convert_ids_to_tokens(ids)
    # [CLS] + 6 question tokens + [SEP] come first; then the context; then [SEP].
    assert tokens[:8] == ["[CLS]", "where", "did", "the", "dog", "run", "?", "[SEP]"]
    assert all(o is None for o in offsets[:8])
    for token, o in zip(tokens[8:], offsets[8:]):
        if token in ("[SEP]", "[PAD]"):
            assert o is None
        else:
            assert CONTEXT[o[0] : o[1]].lower() == token


def test_long_context_is_windowed_with_doc_stride(tok):
    # Room per window: 32 - 3 specials - 6 question tokens = 23 context tokens; 38 tokens -> 2 windows.
    feats = prepare_eval_features([example(LONG_CONTEXT)], tok, max_length=32, doc_stride=8)
    assert feats["example_id"] == ["q1", "q1"]
    windows = [[o for o in offsets if o is not None] for offsets in feats["offset_mapping"]]
    assert len(windows[0]) == 23
    assert windows[0][-8:] == windows[1][:8]  # consecutive windows share doc_stride tokens
    assert windows[1][-1][1] == len(LONG_CONTEXT)  # and together they reach the end of the context


def test_train_labels_cover_answer_characters(tok):
    ex_late = example(LONG_CONTEXT, qid="late")  # answer only in the second window
    ex_early = example(LONG_CONTEXT, answer="the mat", qid="early")  # only in the first
    feats = prepare_train_features([ex_late, ex_early], tok, max_length=32, doc_stride=8)
    eval_feats = prepare_eval_features([ex_late, ex_early], tok, max_length=32, doc_stride=8)
    assert eval_feats["example_id"] == ["late", "late", "early", "early"]
    assert set(feats) == {"input_ids", "attention_mask", "token_type_ids", "start_positions", "end_positions"}
    assert feats["input_ids"] == eval_feats["input_ids"]  # same tokenisation for training and evaluation

    labels = list(zip(feats["start_positions"], feats["end_positions"]))
    assert labels[0] == (0, 0) and labels[3] == (0, 0)  # answer outside the window -> CLS
    for i, ex in ((1, ex_late), (2, ex_early)):
        s, e = labels[i]
        offsets = eval_feats["offset_mapping"][i]
        start_char = ex["answers"]["answer_start"][0]
        assert 0 < s <= e
        assert offsets[s][0] == start_char
        assert offsets[e][1] == start_char + len(ex["answers"]["text"][0])
        assert LONG_CONTEXT[offsets[s][0] : offsets[e][1]] == ex["answers"]["text"][0]


def test_train_label_when_answer_start_is_inside_a_word(tok):
    # Character-level answers need not align with tokens: the label must still cover them.
    ex = example()
    ex["answers"] = {"text": ["reen pa"], "answer_start": [CONTEXT.index("reen pa")]}
    feats = prepare_train_features([ex], tok, max_length=40, doc_stride=8)
    offsets = prepare_eval_features([ex], tok, max_length=40, doc_stride=8)["offset_mapping"][0]
    s, e = feats["start_positions"][0], feats["end_positions"][0]
    assert (s, e) == (token_at(offsets, CONTEXT.index("green")), token_at(offsets, CONTEXT.index("park")))


def test_tokenizer_without_token_type_ids(tmp_path):
    tok = make_tokenizer(tmp_path, model_input_names=["input_ids", "attention_mask"])
    assert "token_type_ids" not in prepare_train_features([example()], tok, max_length=40, doc_stride=8)
    assert "token_type_ids" not in prepare_eval_features([example()], tok, max_length=40, doc_stride=8)


def test_left_padding_puts_context_first(tmp_path):
    tok = make_tokenizer(tmp_path, padding_side="left")
    ex = example()
    train = prepare_train_features([ex], tok, max_length=40, doc_stride=8)
    feats = prepare_eval_features([ex], tok, max_length=40, doc_stride=8)
    offsets = feats["offset_mapping"][0]
    tokens = tok.convert_ids_to_tokens(feats["input_ids"][0])
    assert tokens[0] == "[PAD]" and tokens[-7:] == ["where", "did", "the", "dog", "run", "?", "[SEP]"]
    s, e = train["start_positions"][0], train["end_positions"][0]
    assert CONTEXT[offsets[s][0] : offsets[e][1]] == ANSWER
    start, end = base_logits(feats)
    start[0, s], end[0, e] = 5.0, 5.0
    assert postprocess_predictions([ex], feats, start, end) == {"q1": ANSWER}


def test_stride_too_large_for_question_is_a_clear_error(tok):
    # 16 - 3 - 6 = 7 context tokens per window: a stride of 7 cannot advance.
    with pytest.raises(ValueError, match="q1.*doc_stride=7"):
        prepare_eval_features([example()], tok, max_length=16, doc_stride=7)


# --------------------------------------------------------------------------------------------------
# Post-processing
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def single(tok):
    """One example, one feature, and the token indices of some context words."""
    ex = example()
    feats = prepare_eval_features([ex], tok, max_length=40, doc_stride=8)
    offsets = feats["offset_mapping"][0]
    at = {
        "The": token_at(offsets, 0),
        "cat": token_at(offsets, CONTEXT.index("cat")),
        "A": token_at(offsets, CONTEXT.index("A big")),
        "dog": token_at(offsets, CONTEXT.index("dog")),
        "the_green": token_at(offsets, CONTEXT.index(ANSWER)),
        "park": token_at(offsets, CONTEXT.index("park")),
    }
    return ex, feats, at


def test_best_multi_token_span_text(single):
    ex, feats, at = single
    start, end = base_logits(feats)
    start[0, at["A"]], end[0, at["dog"]] = 4.0, 4.0
    start[0, at["the_green"]], end[0, at["park"]] = 3.0, 3.0
    # Sliced from the context, so the original casing survives.
    assert postprocess_predictions([ex], feats, start, end) == {"q1": "A big brown dog"}
    start[0, at["the_green"]] = 6.0
    assert postprocess_predictions([ex], feats, start, end) == {"q1": ANSWER}


def test_end_before_start_is_skipped(single):
    ex, feats, at = single
    start, end = base_logits(feats)
    start[0, at["park"]], end[0, at["cat"]] = 20.0, 20.0  # best start after best end
    start[0, at["the_green"]], end[0, at["park"]] = 5.0, 5.0
    # (park, park) = 20 + 5 = 25 is valid and beats everything else.
    assert postprocess_predictions([ex], feats, start, end) == {"q1": "park"}
    start[0, at["park"]] = 1.0
    # Now (park, cat) would score 21 but is reversed; (the_green, park) = 10 wins.
    assert postprocess_predictions([ex], feats, start, end) == {"q1": ANSWER}


def test_question_and_special_tokens_are_skipped(single):
    ex, feats, at = single
    start, end = base_logits(feats)
    start[0, :8] = 30.0  # [CLS] + question + [SEP]
    end[0, :8] = 30.0
    sep = feats["input_ids"][0].index(3, 8)  # the [SEP] after the context, then padding
    end[0, sep : sep + 3] = 30.0  # after every context start: only the None offsets rule these out
    start[0, at["the_green"]], end[0, at["park"]] = 2.0, 2.0
    assert postprocess_predictions([ex], feats, start, end) == {"q1": ANSWER}
    # With only the single best start/end considered, and both in the question, nothing is valid.
    assert postprocess_predictions([ex], feats, start, end, n_best_size=1) == {"q1": ""}


def test_max_answer_length_is_in_tokens(single):
    ex, feats, at = single
    start, end = base_logits(feats)
    start[0, at["The"]], end[0, at["park"]] = 9.0, 9.0  # "The cat ... green park": 16 tokens
    start[0, at["the_green"]] = 2.0  # "the green park": 3 tokens
    assert at["park"] - at["The"] + 1 == 16
    # The limit is inclusive: a span of exactly max_answer_length tokens is allowed.
    assert postprocess_predictions([ex], feats, start, end, max_answer_length=16) == {"q1": CONTEXT[:-1]}
    assert postprocess_predictions([ex], feats, start, end, max_answer_length=15) == {"q1": ANSWER}
    assert postprocess_predictions([ex], feats, start, end, max_answer_length=3) == {"q1": ANSWER}


def test_answer_found_in_second_feature(tok):
    ex = example(LONG_CONTEXT)
    feats = prepare_eval_features([ex], tok, max_length=32, doc_stride=8)
    assert len(feats["example_id"]) == 2
    with pytest.raises(ValueError):  # the answer is not in the first window
        token_at(feats["offset_mapping"][0], LONG_CONTEXT.index(ANSWER))
    offsets = feats["offset_mapping"][1]
    start, end = base_logits(feats)
    start[1, token_at(offsets, LONG_CONTEXT.index(ANSWER))] = 5.0
    end[1, token_at(offsets, LONG_CONTEXT.index("park"))] = 5.0
    # A weaker valid span in the first window must lose to the second window's.
    first = feats["offset_mapping"][0]
    start[0, token_at(first, 0)], end[0, token_at(first, LONG_CONTEXT.index("mat"))] = 4.0, 4.0
    assert postprocess_predictions([ex], feats, start, end) == {"q1": ANSWER}


def test_several_examples_and_padded_logits(tok):
    ex1, ex2 = example(qid="a"), example(LONG_CONTEXT, answer="the mat", qid="b")
    feats = prepare_eval_features([ex1, ex2], tok, max_length=32, doc_stride=8)
    start, end = base_logits(feats)
    # Callers may pad logits wider than the features; the extra columns must be ignored.
    start = np.pad(start, ((0, 0), (0, 5)), constant_values=50.0)
    end = np.pad(end, ((0, 0), (0, 5)), constant_values=50.0)
    i_b = feats["example_id"].index("b")
    for i, (ex, text) in ((0, (ex1, "A big brown dog")), (i_b, (ex2, "the mat"))):
        offsets = feats["offset_mapping"][i]
        s = token_at(offsets, ex["context"].index(text))
        start[i, s], end[i, s + len(text.split()) - 1] = 3.0, 3.0
    assert postprocess_predictions([ex1, ex2], feats, start, end) == {"a": "A big brown dog", "b": "the mat"}


def test_logits_shape_is_checked(single):
    ex, feats, _ = single
    start, end = base_logits(feats)
    with pytest.raises(ValueError, match="shape"):
        postprocess_predictions([ex], feats, start[:, :-1], end)
    with pytest.raises(ValueError, match="shape"):
        postprocess_predictions([ex], feats, np.concatenate([start, start]), np.concatenate([end, end]))


# --------------------------------------------------------------------------------------------------
# SQuAD v2: unanswerable questions
# --------------------------------------------------------------------------------------------------


def unanswerable(context=LONG_CONTEXT, qid="none") -> dict:
    return {"id": qid, "title": "t", "context": context, "question": QUESTION, "answers": {"text": [], "answer_start": []}}


def test_unanswerable_train_features_point_at_cls(tok):
    feats = prepare_train_features([unanswerable(), example(LONG_CONTEXT)], tok, max_length=32, doc_stride=8)
    labels = list(zip(feats["start_positions"], feats["end_positions"]))
    assert len(labels) == 4  # two windows per example
    assert labels[:2] == [(0, 0), (0, 0)]  # every window of the unanswerable example
    assert labels[2] == (0, 0) and labels[3] != (0, 0)  # the answerable one: only its second window


def test_left_padding_cls_index_matches_training_label(tmp_path):
    tok = make_tokenizer(tmp_path, padding_side="left")
    train = prepare_train_features([unanswerable(CONTEXT)], tok, max_length=40, doc_stride=8)
    feats = prepare_eval_features([unanswerable(CONTEXT)], tok, max_length=40, doc_stride=8)
    (cls,) = feats["cls_index"]
    assert cls > 0 and feats["input_ids"][0][cls] == tok.cls_token_id  # padding comes first
    assert (train["start_positions"][0], train["end_positions"][0]) == (cls, cls)


@pytest.fixture
def two_windows(tok):
    """The long example (answer in its second window), its two features and the answer's token indices."""
    ex = example(LONG_CONTEXT)
    feats = prepare_eval_features([ex], tok, max_length=32, doc_stride=8)
    offsets = feats["offset_mapping"][1]
    s, e = token_at(offsets, LONG_CONTEXT.index(ANSWER)), token_at(offsets, LONG_CONTEXT.index("park"))
    start, end = base_logits(feats)
    start[1, s], end[1, e] = 5.0, 5.0  # best span: score 10
    return ex, feats, start, end


def test_null_score_is_the_minimum_over_features(two_windows):
    ex, feats, start, end = two_windows
    start[:, 0], end[:, 0] = [10.0, 1.0], [10.0, 1.0]  # CLS: 20 in the first window, 2 in the second
    out = postprocess_predictions_v2([ex], feats, start, end)
    # min(20, 2) - 10 = -8 <= 0: answered. (With the maximum, 20 - 10 = 10, it would be "".)
    assert out.score_diffs == {"q1": pytest.approx(-8.0)}
    assert out.predictions == out.answers == {"q1": ANSWER}
    start[1, 0], end[1, 0] = 8.0, 8.0  # now min(20, 16) - 10 = 6
    assert postprocess_predictions_v2([ex], feats, start, end).predictions == {"q1": ""}
    # The threshold is exclusive: "" only when the diff is strictly above it.
    assert postprocess_predictions_v2([ex], feats, start, end, null_score_diff_threshold=6.0).predictions == {"q1": ANSWER}
    assert postprocess_predictions_v2([ex], feats, start, end, null_score_diff_threshold=5.9).predictions == {"q1": ""}
    # The non-null answer and the diff do not depend on the threshold.
    out = postprocess_predictions_v2([ex], feats, start, end, null_score_diff_threshold=5.9)
    assert out.answers == {"q1": ANSWER} and out.score_diffs == {"q1": pytest.approx(6.0)}


def test_infinite_thresholds(two_windows):
    ex, feats, start, end = two_windows
    start[:, 0], end[:, 0] = 50.0, 50.0  # the null score beats every span by far
    always = postprocess_predictions_v2([ex], feats, start, end, null_score_diff_threshold=np.inf)
    assert always.predictions == {"q1": ANSWER}
    start[:, 0], end[:, 0] = -50.0, -50.0  # every span beats the null score by far
    never = postprocess_predictions_v2([ex], feats, start, end, null_score_diff_threshold=-np.inf)
    assert never.predictions == {"q1": ""} and never.answers == {"q1": ANSWER}


def test_v2_agrees_with_v1_when_answering(single):
    ex, feats, at = single
    start, end = base_logits(feats)
    start[0, at["A"]], end[0, at["dog"]] = 4.0, 4.0
    out = postprocess_predictions_v2([ex], feats, start, end, null_score_diff_threshold=np.inf)
    assert out.predictions == postprocess_predictions([ex], feats, start, end) == {"q1": "A big brown dog"}
    assert out.score_diffs == {"q1": pytest.approx(2 * LOW - 8.0)}  # CLS scores LOW + LOW


def test_no_valid_span_gives_infinite_diff(single):
    ex, feats, _ = single
    start, end = base_logits(feats)
    start[0, :8], end[0, :8] = 30.0, 30.0  # best start/end all in the question
    out = postprocess_predictions_v2([ex], feats, start, end, n_best_size=1, null_score_diff_threshold=np.inf)
    assert out.answers == out.predictions == {"q1": ""} and out.score_diffs == {"q1": np.inf}
