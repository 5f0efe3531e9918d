"""Classification and SQuAD metrics against hand-computed values."""

import numpy as np
import pytest

from pipeline.metrics import accuracy, binary_f1, exact_match, f1_score, normalize_answer, squad_v1


def test_accuracy_lists_and_arrays():
    assert accuracy([1, 0, 1, 1], [1, 1, 1, 0]) == 0.5
    assert accuracy(np.array([2, 2, 0]), [2, 2, 0]) == 1.0
    assert isinstance(accuracy(np.array([1]), np.array([0])), float)


def test_accuracy_rejects_mismatched_or_empty():
    with pytest.raises(ValueError, match="length"):
        accuracy([1, 0], [1])
    with pytest.raises(ValueError, match="empty"):
        accuracy([], [])


def test_binary_f1_hand_computed():
    preds, labels = [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]
    # positive=1: TP=2 (idx 0, 4), FP=1 (idx 1), FN=1 (idx 3) -> 2*2 / (2*2 + 1 + 1) = 2/3
    assert binary_f1(preds, labels) == pytest.approx(2 / 3)
    # positive=0: TP=1 (idx 2), FP=1 (idx 3), FN=1 (idx 1) -> 2 / 4
    assert binary_f1(preds, labels, positive=0) == pytest.approx(0.5)


def test_binary_f1_degenerate_cases():
    assert binary_f1([0, 0, 0], [0, 0, 0]) == 0.0  # undefined: no positives anywhere
    assert binary_f1([1, 1], [0, 0]) == 0.0  # only false positives
    assert binary_f1([0, 0], [1, 1]) == 0.0  # only misses
    assert binary_f1(np.array([1, 0]), np.array([1, 0])) == 1.0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The  Cat, sat!", "cat sat"),
        ("an apple a day", "apple day"),
        ("  Theater\tand\nANother  ", "theater and another"),  # articles only as whole words
        ("The (a) cat.", "cat"),
        ("the-end", "theend"),  # punctuation is deleted before articles are looked for
        ("", ""),
    ],
)
def test_normalize_answer(raw, expected):
    assert normalize_answer(raw) == expected


def test_exact_match():
    assert exact_match("The Cat.", ["cat"]) == 1.0
    assert exact_match("cat", ["dog", "a cat"]) == 1.0
    assert exact_match("cat sat", ["cat"]) == 0.0


def test_f1_partial_overlap():
    # "the cat sat" -> [cat, sat]; "a cat sat down" -> [cat, sat, down]: P = 2/2, R = 2/3, F1 = 0.8
    assert f1_score("the cat sat", ["a cat sat down"]) == pytest.approx(0.8)


def test_f1_takes_the_max_over_golds_and_counts_multiplicity():
    assert f1_score("cat sat", ["dog", "cat sat down", "sat"]) == pytest.approx(0.8)
    # common tokens counted as a multiset: one "cat" in common, P = 1/3, R = 1 -> F1 = 0.5
    assert f1_score("cat cat cat", ["cat"]) == pytest.approx(0.5)
    # two "cat"s in common: P = 2/2, R = 2/3 -> 0.8
    assert f1_score("cat cat", ["cat cat dog"]) == pytest.approx(0.8)
    assert f1_score("dog", ["cat"]) == 0.0


def test_empty_after_normalisation_is_consistent_with_exact_match():
    assert exact_match("the", ["a"]) == 1.0
    assert f1_score("the", ["a"]) == 1.0
    assert f1_score("", ["cat"]) == 0.0


def test_golds_must_be_a_nonempty_list():
    with pytest.raises(TypeError):
        f1_score("cat", "cat")
    with pytest.raises(ValueError):
        exact_match("cat", [])


def test_squad_v1_averages_as_percentages():
    predictions = {"q1": "the cat", "q2": "big dog", "extra": "ignored"}
    references = {"q1": ["Cat"], "q2": ["small dog", "dog"]}
    scores = squad_v1(predictions, references)
    # q1: EM 1, F1 1. q2: EM 0, F1 max(1/2, 2/3) = 2/3.
    assert scores == pytest.approx({"exact_match": 50.0, "f1": 100 * (1 + 2 / 3) / 2})


def test_squad_v1_names_missing_ids():
    with pytest.raises(ValueError, match="'q2'"):
        squad_v1({"q1": "cat"}, {"q1": ["cat"], "q2": ["dog"]})
    with pytest.raises(ValueError):
        squad_v1({}, {})
