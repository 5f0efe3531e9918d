"""Classification, GLUE and SQuAD metrics against hand-computed values (GLUE ones also against scipy/sklearn)."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.metrics import accuracy, binary_f1, exact_match, f1_score, normalize_answer, squad_v1
from pipeline.metrics import matthews_corrcoef, pearson, rank_average, spearman


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


# ------------------------------------------------------------------------------------------ GLUE metrics

def test_matthews_binary_hand_computed():
    preds, labels = [1, 1, 0, 0, 1, 0], [1, 0, 0, 1, 1, 0]
    # TP=2, TN=2, FP=1, FN=1 -> (4 - 1) / sqrt(3 * 3 * 3 * 3) = 1/3
    assert matthews_corrcoef(preds, labels) == pytest.approx(1 / 3)
    assert matthews_corrcoef([1, 0, 1], [1, 0, 1]) == 1.0
    assert matthews_corrcoef([0, 1, 0], [1, 0, 1]) == -1.0


def test_matthews_multiclass_hand_computed():
    preds, labels = [0, 1, 2, 2, 1, 0], [0, 1, 2, 1, 1, 2]
    # C (gold x pred) = [[1,0,0],[0,2,1],[1,0,1]]; s=6, c=4, t=(1,3,2), p=(2,2,2)
    # (4*6 - (2+6+4)) / sqrt((36-12)(36-14)) = 12 / sqrt(24*22)
    assert matthews_corrcoef(preds, labels) == pytest.approx(12 / np.sqrt(24 * 22))


def test_matthews_undefined_is_zero_and_bad_input_raises():
    assert matthews_corrcoef([1, 1, 1], [0, 1, 0]) == 0.0
    assert matthews_corrcoef([0, 1, 0], [1, 1, 1]) == 0.0
    with pytest.raises(ValueError, match="length"):
        matthews_corrcoef([1, 0], [1])
    with pytest.raises(ValueError, match="empty"):
        matthews_corrcoef([], [])


def test_pearson_hand_computed():
    # x centred = (-1, 0, 1), y centred = (-2, 1, 1): 3 / sqrt(2 * 6)
    assert pearson([1, 2, 3], [0, 3, 3]) == pytest.approx(3 / np.sqrt(12))
    assert pearson([1.0, 2.0, 3.0], [10.0, 20.0, 30.0]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert pearson([1, 1, 1], [1, 2, 3]) == 0.0  # undefined
    assert isinstance(pearson(np.array([1.0, 2.0]), np.array([2.0, 1.0])), float)
    with pytest.raises(ValueError, match="length"):
        pearson([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="empty"):
        spearman([], [])
    with pytest.raises(ValueError, match="NaN"):
        pearson([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ValueError, match="infinite"):
        spearman([1.0, 2.0], [1.0, float("inf")])


def test_pearson_is_scale_free():
    for scale in (5e-324, 1e-300, 1.0, 1e300):  # subnormal, tiny, plain, huge: no under/overflow
        assert pearson([0.0, 0.0, scale], [0.0, 0.0, 0.5]) == pytest.approx(1.0)
        assert pearson([scale, 0.0, scale], [1.0, 3.0, 2.0]) == pytest.approx(-np.sqrt(3) / 2)


def test_average_ranks_and_spearman_with_ties():
    assert rank_average([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]
    assert rank_average([3, 3, 3]).tolist() == [2.0, 2.0, 2.0]
    # ranks (1, 2.5, 2.5, 4) vs (1, 2, 3, 4): centred (-1.5, 0, 0, 1.5) . (-1.5, -.5, .5, 1.5) = 4.5;
    # norms^2 4.5 and 5 -> 4.5 / sqrt(22.5)
    assert spearman([1, 5, 5, 9], [1, 2, 3, 4]) == pytest.approx(4.5 / np.sqrt(22.5))
    assert spearman([1, 2, 3, 4], [1, 4, 9, 16]) == pytest.approx(1.0)  # monotone, not linear


_labels = st.lists(st.integers(0, 3), min_size=1, max_size=60)
# Subnormal floats are left out: there scipy loses precision (e.g. r(x=[0, 0, 5e-324], y=[0, 0, .5]) is
# 0.82 in scipy 1.17, exactly 1 here), see test_pearson_is_scale_free.
_float = st.floats(-5, 5, allow_subnormal=False)
_scores = st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.5, -1.0]) | _float, min_size=2, max_size=60)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_matthews_matches_scikit_learn(data):
    from sklearn.metrics import matthews_corrcoef as reference

    labels = data.draw(_labels)
    preds = data.draw(st.lists(st.integers(0, 3), min_size=len(labels), max_size=len(labels)))
    with warnings.catch_warnings():  # sklearn warns when only one class occurs
        warnings.simplefilter("ignore")
        expected = reference(labels, preds)
    assert matthews_corrcoef(preds, labels) == pytest.approx(expected, abs=1e-9)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_pearson_and_spearman_match_scipy(data):
    import scipy.stats

    y = data.draw(_scores)
    x = data.draw(st.lists(st.sampled_from([0.0, 1.0, 2.0]) | _float, min_size=len(y), max_size=len(y)))
    with warnings.catch_warnings():  # scipy warns on constant input
        warnings.simplefilter("ignore")
        ref_p, ref_s = scipy.stats.pearsonr(x, y)[0], scipy.stats.spearmanr(x, y)[0]
    # scipy gives NaN where the correlation is undefined (a constant side); we give 0.0.
    assert pearson(x, y) == (pytest.approx(ref_p, abs=1e-7) if np.isfinite(ref_p) else 0.0)
    assert spearman(x, y) == (pytest.approx(ref_s, abs=1e-7) if np.isfinite(ref_s) else 0.0)
