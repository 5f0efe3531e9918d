"""BLEU and ROUGE on inputs small enough to count by hand (the counts are in the comments)."""

import math

import pytest

from pipeline.metrics import text as text_metrics
from pipeline.tasks.qa import QAParams
from pipeline.metrics.text import METRICS, bleu, compute, rouge, rouge_l, rouge_n


def t(s: str) -> list[str]:
    return s.split()


HYP = t("the cat sat on the mat")
REF = t("the cat is on the mat")
# n-grams of HYP matched in REF: 1: the, cat, on, the, mat = 5/6 | 2: the cat, on the, the mat = 3/5
# 3: on the mat = 1/4 | 4: none of 3. Lengths equal: no brevity penalty.


def test_bleu_unsmoothed_is_zero_without_a_4gram_match():
    assert bleu([HYP], [[REF]], smooth="none") == 0.0
    assert bleu([HYP], [[REF]], max_order=3, smooth="none") == pytest.approx((5 / 6 * 3 / 5 * 1 / 4) ** (1 / 3))


def test_bleu_add1_smoothing():
    # Orders >= 2 get +1 on matches and totals: 5/6, 4/6, 2/5, 1/4.
    assert bleu([HYP], [[REF]]) == pytest.approx((5 / 6 * 4 / 6 * 2 / 5 * 1 / 4) ** 0.25)


def test_bleu_perfect_and_disjoint():
    assert bleu([HYP], [[HYP]], smooth="none") == pytest.approx(1.0)
    assert bleu([t("dog")], [[t("cat")]]) == 0.0  # no unigram in common: 0 even when smoothed


def test_bleu_clips_counts_by_the_reference():
    # "the" x4 against one "the": 1/4 unigram precision (not 4/4). Bigrams: "the the" x3, none match.
    hyp, ref = t("the the the the"), t("the cat sat down")
    assert bleu([hyp], [[ref]], max_order=1) == pytest.approx(0.25)
    assert bleu([hyp], [[ref]], max_order=2, smooth="add1") == pytest.approx(math.sqrt(0.25 * 1 / 4))


def test_bleu_brevity_penalty_and_closest_reference():
    hyp = t("the cat")
    # References of length 3 and 6: the closest to 2 is 3 -> BP = exp(1 - 3/2); precisions are 1.
    refs = [t("the cat sat"), t("a b c d e f")]
    assert bleu([hyp], [refs], max_order=2, smooth="none") == pytest.approx(math.exp(1 - 3 / 2))
    # Equally close references (1 and 3 from length 2): the shorter one counts -> no penalty.
    assert bleu([hyp], [[t("the"), t("the cat sat")]], max_order=1) == pytest.approx(1.0)


def test_bleu_is_corpus_level_not_a_mean():
    # Counts are pooled: unigrams 1/1 + 0/1 -> 1/2 (a per-segment mean would be the same here), but the
    # lengths are pooled too: c = 2, r = 1 + 3 = 4 -> BP = exp(1 - 4/2) = exp(-1).
    hyps, refs = [t("cat"), t("dog")], [[t("cat")], [t("a b c")]]
    assert bleu(hyps, refs, max_order=1) == pytest.approx(0.5 * math.exp(-1))


def test_rouge_n_and_l():
    # ROUGE-1: overlap 5, 6 and 6 unigrams -> F = 2*5/12. ROUGE-2: overlap 3 of 5 and 5 -> 0.6.
    assert rouge_n(HYP, REF, 1) == pytest.approx(10 / 12)
    assert rouge_n(HYP, REF, 2) == pytest.approx(0.6)
    # LCS "the cat on the mat" = 5 -> P = R = 5/6.
    assert rouge_l(HYP, REF) == pytest.approx(5 / 6)
    # LCS of 2 ("a c") of 3 and 4 tokens: P = 2/3, R = 2/4 -> F = 2PR / (P + R) = 4/7
    assert rouge_l(t("a b c"), t("a x c y")) == pytest.approx(4 / 7)
    # Order matters for ROUGE-L, not for ROUGE-1: reversed text keeps all unigrams, LCS of 1.
    rev = t("c b a")
    assert rouge_n(rev, t("a b c"), 1) == 1.0 and rouge_l(rev, t("a b c")) == pytest.approx(1 / 3)
    assert rouge_n([], REF, 1) == 0.0 and rouge_l(HYP, []) == 0.0
    # Tokens are compared as given (no lowercasing, punctuation kept): only "sat" matches -> P = R = 1/2.
    assert rouge_n(t("Cat sat"), t("cat sat"), 1) == pytest.approx(0.5)
    assert rouge_l(t("u.s. army"), t("u s army")) == pytest.approx(2 * 1 / (2 + 3))


def test_rouge_takes_best_reference_and_averages_segments():
    scores = rouge([t("red fox"), t("cat")], [[t("a dog"), t("the red fox")], [t("dog")]])
    # Segment 1: best reference "the red fox": R1 = 2*2/5, R2 = 2*1/3, RL = 2*2/5. Segment 2: all 0.
    assert scores == pytest.approx({"rouge1": 0.4, "rouge2": 1 / 3, "rougeL": 0.4})


def test_compute_as_percentages_and_registry_matches_params():
    out = compute(["bleu", "rouge"], [HYP], [[REF]])
    assert set(out) == {"bleu", "rouge1", "rouge2", "rougeL"}
    assert out["rouge2"] == pytest.approx(60.0) and out["bleu"] == pytest.approx(100 * bleu([HYP], [[REF]]))
    with pytest.raises(ValueError, match="unknown"):
        compute(["cider"], [HYP], [[REF]])
    # params accepts exactly the registered names
    QAParams(type="qa", text_metrics=sorted(METRICS))
    import typing

    (item,) = typing.get_args(typing.get_type_hints(QAParams)["text_metrics"])
    assert set(typing.get_args(item)) == set(text_metrics.METRICS)


def test_bad_inputs():
    with pytest.raises(ValueError, match="differ in length"):
        bleu([HYP], [])
    with pytest.raises(ValueError, match="references\\[0\\]"):
        rouge([HYP], [REF])  # a token list, not a list of token lists
    with pytest.raises(ValueError, match="empty"):
        bleu([], [])
    # The libraries split joined text on whitespace: a token holding a space (or an empty one) would not
    # survive the round trip, so it is refused.
    with pytest.raises(ValueError, match="without whitespace"):
        bleu([["new york", "city"]], [[t("new york city")]])
    with pytest.raises(ValueError, match="without whitespace"):
        rouge([HYP], [[["", "cat"]]])
    with pytest.raises(ValueError, match="list of tokens"):
        rouge_n("the cat", REF, 1)


def test_bleu_with_segments_of_different_reference_counts():
    # Segment 1 has two references, segment 2 one. Unigrams: red, fox matched, cat not -> 2/3. Bigrams:
    # "red fox" matched, "cat" has none -> 1/1, (1+1)/(1+1) smoothed. Lengths: c = 2 + 1; the reference
    # lengths closest to 2 (of 2 and 3) and to 1 (of 1) sum to r = 3 -> no brevity penalty.
    hyps = [t("red fox"), t("cat")]
    refs = [[t("a dog"), t("the red fox")], [t("dog")]]
    assert bleu(hyps, refs, max_order=2) == pytest.approx(math.sqrt(2 / 3 * 1))


# ------------------------------------------------------------------------------------------------ METEOR
# Banerjee & Lavie (2005) with nltk's defaults alpha = 0.9, beta = 3, gamma = 0.5: with m matched unigrams of
# a hypothesis of h and a reference of r tokens, P = m/h, R = m/r, Fmean = P R / (0.9 P + 0.1 R), and with c
# chunks (runs of matches adjacent in both) METEOR = Fmean (1 - 0.5 (c/m)^3).
# They need WordNet 3.0 (Debian's wordnet-base, which tests/run.sh installs) and fail without it, rather than
# skip, like the remote tests without sshd.


def test_meteor_fragmentation_penalty_by_hand():
    # All 4 words match (P = R = 1, Fmean = 1) in 2 chunks, "the quick" and "brown fox": 1 - 0.5 (2/4)^3 = 15/16.
    assert text_metrics.meteor([t("the quick brown fox")], [[t("brown fox the quick")]]) == pytest.approx(15 / 16)
    # In order: 1 chunk of 4 -> 1 - 0.5 (1/4)^3.
    assert text_metrics.meteor([t("the quick brown fox")], [[t("the quick brown fox")]]) == pytest.approx(
        1 - 0.5 / 64)


def test_meteor_stem_and_wordnet_synonym_matches_by_hand():
    # Porter stems: running/runs -> run, dogs/dog -> dog: m = 2 of 2 and 2, one chunk: 1 - 0.5 (1/2)^3 = 15/16.
    assert text_metrics.meteor([t("running dogs")], [[t("runs dog")]]) == pytest.approx(15 / 16)
    # "the" exact, "car" ~ "auto" through WordNet (car.n.01), "stopped" unmatched: m = 2, h = 3, r = 2.
    # P = 2/3, R = 1 -> Fmean = (2/3) / (0.9 * 2/3 + 0.1) = 20/21; one chunk -> 20/21 * 15/16 = 25/28.
    assert text_metrics.meteor([t("the car stopped")], [[t("the auto")]]) == pytest.approx(25 / 28)
    # Without WordNet's help the same pair would give m = 1: P = 1/3, R = 1/2, Fmean = (1/6) / 0.35 = 10/21,
    # one chunk of one match -> penalty 0.5 -> 5/21. nltk's synonym stage sees the stems the stem stage leaves
    # ("large" -> "larg", not a WordNet word), so big/large does not match (the docstring says so).
    assert text_metrics.meteor([t("the big stopped")], [[t("the large")]]) == pytest.approx(5 / 21)


def test_meteor_corpus_mean_best_reference_and_no_match():
    assert text_metrics.meteor([t("dog")], [[t("cat")]]) == 0.0
    assert text_metrics.meteor([[]], [[t("a cat")]]) == 0.0  # an empty answer matches nothing
    # Per segment the best reference (25/28 over 0), then the mean over segments: (25/28 + 15/16) / 2.
    score = text_metrics.meteor([t("the car stopped"), t("running dogs")],
                                [[t("zebra"), t("the auto")], [t("runs dog")]])
    assert score == pytest.approx((25 / 28 + 15 / 16) / 2)
    assert compute(["meteor"], [t("running dogs")], [[t("runs dog")]]) == {"meteor": pytest.approx(100 * 15 / 16)}


def test_meteor_without_wordnet_is_one_clear_error(tmp_path, monkeypatch):
    from pipeline.config.loader import load
    from pipeline.core.errors import PipelineError
    from pipeline.tasks import TaskParams

    monkeypatch.setenv("WNSEARCHDIR", str(tmp_path))  # an empty directory: no WordNet there
    with pytest.raises(ValueError, match=f"needs WordNet 3.0 in {tmp_path} .*apt-get install wordnet-base"):
        text_metrics.check_available(["bleu", "meteor"])
    text_metrics.check_available(["bleu", "rouge"])  # the others need no WordNet
    file = tmp_path / "params.yaml"
    file.write_text("tasks:\n  qa: {type: qa, text_metrics: [meteor]}\n")
    with pytest.raises(PipelineError, match="tasks.qa.*wordnet-base") as err:
        load({"tasks.qa": TaskParams}, file=file)
    assert "\n" not in str(err.value)
