"""Classification, GLUE and SQuAD metrics against hand-computed values and, for random inputs, against their
definitions computed exactly (integers and fractions), independently of scikit-learn and scipy."""

import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.metrics.glue import GLUE_CONFIGS, GLUE_METRICS, accuracy, binary_f1, glue_scores, matthews_corrcoef
from pipeline.metrics.glue import pearson, rank_average, spearman
from pipeline.metrics.squad import exact_match, f1_score, normalize_answer, squad_v1


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
    # 0/0: a constant prediction or constant labels. 0.0 by the convention of scikit-learn and the GLUE
    # metric (documented in matthews_corrcoef), a number a report can compare, never NaN.
    assert matthews_corrcoef([1, 1, 1], [0, 1, 0]) == 0.0
    assert matthews_corrcoef([0, 1, 0], [1, 1, 1]) == 0.0
    assert matthews_corrcoef([2, 2], [2, 2]) == 0.0
    with pytest.raises(ValueError, match="length"):
        matthews_corrcoef([1, 0], [1])
    with pytest.raises(ValueError, match="empty"):
        matthews_corrcoef([], [])


def test_pearson_hand_computed():
    # x centred = (-1, 0, 1), y centred = (-2, 1, 1): 3 / sqrt(2 * 6)
    assert pearson([1, 2, 3], [0, 3, 3]) == pytest.approx(3 / np.sqrt(12))
    assert pearson([1.0, 2.0, 3.0], [10.0, 20.0, 30.0]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
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


def test_undefined_correlations_are_none_and_json_null():
    # A constant side makes the correlation 0/0; scipy returns NaN, which a strict JSON file refuses.
    assert pearson([1, 1, 1], [1, 2, 3]) is None
    assert pearson([1.0, 2.0, 3.0], [0.5, 0.5, 0.5]) is None
    assert spearman([4, 4, 4], [1, 2, 3]) is None
    assert pearson([2.0], [3.0]) is None and spearman([2.0], [3.0]) is None  # one example: constant
    scores = glue_scores("stsb", [0.2, 0.2, 0.2, 0.2], [1.0, 2.0, 3.0, 4.0])
    assert scores == {"pearson": None, "spearmanr": None}
    assert json.loads(json.dumps(scores, allow_nan=False)) == scores


def test_glue_configs_and_registry():
    assert set(GLUE_CONFIGS) == {"cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "mnli_mismatched", "mnli_matched",
                                 "qnli", "rte", "wnli", "hans"}
    assert {m for names in GLUE_CONFIGS.values() for m in names} == set(GLUE_METRICS)
    # preds [1, 0, 1, 1] vs labels [1, 0, 0, 1]: 3 of 4 right; TP 2, FP 1, FN 0 -> F1 4/5
    assert glue_scores("mrpc", [1, 0, 1, 1], [1, 0, 0, 1]) == pytest.approx({"accuracy": 0.75, "f1": 0.8})
    assert glue_scores("rte", [1, 0, 1, 1], [1, 0, 0, 1]) == {"accuracy": 0.75}
    with pytest.raises(KeyError, match="unknown GLUE config 'sts'"):
        glue_scores("sts", [1.0], [1.0])


def test_results_are_plain_python_numbers():
    for value in (accuracy([1, 0], [1, 1]), binary_f1([1, 0], [1, 1]), matthews_corrcoef([1, 0], [1, 0]),
                  pearson([1, 2, 3], [1, 3, 2]), spearman([1, 2, 3], [1, 3, 2])):
        assert type(value) is float


# --------------------------------------------- random inputs against the definitions, computed exactly

_labels = st.lists(st.integers(0, 3), min_size=1, max_size=60)


def _same_length_labels(data, labels):
    return data.draw(st.lists(st.integers(0, 3), min_size=len(labels), max_size=len(labels)))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_accuracy_and_f1_follow_their_counts(data):
    labels = data.draw(_labels)
    preds = _same_length_labels(data, labels)
    pairs = list(zip(preds, labels))
    assert accuracy(preds, labels) == pytest.approx(sum(p == y for p, y in pairs) / len(pairs))
    for positive in (0, 1):
        tp = sum(p == positive and y == positive for p, y in pairs)
        fp = sum(p == positive and y != positive for p, y in pairs)
        fn = sum(p != positive and y == positive for p, y in pairs)
        expected = 0.0 if 2 * tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
        assert binary_f1(preds, labels, positive) == pytest.approx(expected)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_matthews_follows_gorodkins_formula(data):
    labels = data.draw(_labels)
    preds = _same_length_labels(data, labels)
    classes = sorted(set(labels) | set(preds))
    s = len(labels)
    c = sum(p == y for p, y in zip(preds, labels))
    t = [labels.count(k) for k in classes]
    q = [preds.count(k) for k in classes]
    # Integers throughout; one square root at the end.
    num = c * s - sum(a * b for a, b in zip(t, q))
    den = (s * s - sum(b * b for b in q)) * (s * s - sum(a * a for a in t))
    expected = 0.0 if den == 0 else num / math.sqrt(den)
    assert matthews_corrcoef(preds, labels) == pytest.approx(expected, abs=1e-12)


def _exact_pearson(x: list[Fraction], y: list[Fraction]) -> float | None:
    """r from its definition in exact arithmetic: sign(cov) * sqrt(cov^2 / (var_x var_y))."""
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y))
    vx, vy = sum((a - mx) ** 2 for a in x), sum((b - my) ** 2 for b in y)
    if vx == 0 or vy == 0:
        return None
    return math.copysign(math.sqrt(cov * cov / (vx * vy)), cov)


def _exact_average_ranks(v: list) -> list[Fraction]:
    """Rank by definition: 1 + the number of smaller values + half the number of other equal values."""
    return [1 + sum(w < a for w in v) + Fraction(sum(w == a for w in v) - 1, 2) for a in v]


# Exact decimals (multiples of 1/4) keep the definitions exact; repeats make ties and constant sides.
_quarters = st.integers(-40, 40).map(lambda k: k / 4)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_pearson_spearman_and_ranks_follow_their_definitions(data):
    y = data.draw(st.lists(_quarters, min_size=1, max_size=40))
    x = data.draw(st.lists(st.sampled_from([0.0, 1.0, 2.0]) | _quarters, min_size=len(y), max_size=len(y)))
    fx, fy = [Fraction(v) for v in x], [Fraction(v) for v in y]
    assert rank_average(x).tolist() == [float(r) for r in _exact_average_ranks(fx)]
    for got, expected in ((pearson(x, y), _exact_pearson(fx, fy)),
                          (spearman(x, y), _exact_pearson(_exact_average_ranks(fx), _exact_average_ranks(fy)))):
        assert got is None if expected is None else got == pytest.approx(expected, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=30), st.floats(1e-3, 1e3), st.floats(-1e3, 1e3))
def test_pearson_is_invariant_to_positive_affine_maps(x, scale, shift):
    y = [v * v for v in x]
    r = pearson(x, y)
    mapped = pearson([scale * v + shift for v in x], y)
    if r is None or mapped is None:  # constant sides stay constant (up to rounding of the map)
        return
    assert mapped == pytest.approx(r, abs=1e-6)
    assert pearson([-v for v in x], y) == pytest.approx(-r, abs=1e-9)
