"""Property-based tests (hypothesis) of the pure functions: masks, merges, quantization, metrics.

Each property is checked on random inputs against a definition or an independent reference
(a direct transcription of the SQuAD rules for EM/F1).
"""

from __future__ import annotations

import dataclasses
import re
import string
from collections import Counter

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.metrics import squad as squad_metrics
from pipeline.merge import METHODS, merge_states
from pipeline.prune.masks import magnitude_masks
from pipeline.prune.nm import nm_masks
from pipeline.quantize.dynamic_int8 import int8_tensors, load_int8_, quantize_dynamic_int8
from pipeline.quantize.groupwise import dequantize_groups, pack_int4, quantize_groups, unpack_int4

settings.register_profile("pipeline", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("pipeline")

seeds = st.integers(0, 2**31 - 1)


def rand(shape, seed: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


# Small integer-valued tensors give many ties in magnitude, the hard case for an exact count.
@st.composite
def weight_dicts(draw, ties: bool = True):
    n = draw(st.integers(1, 4))
    out = {}
    for i in range(n):
        shape = (draw(st.integers(1, 6)), draw(st.integers(1, 9)))
        w = rand(shape, draw(seeds))
        out[f"w{i}"] = torch.round(w * 2) if ties and draw(st.booleans()) else w
    return out


# ------------------------------------------------------------------------------------------------- masks
@given(weights=weight_dicts(), sparsity=st.floats(0.0, 0.999), scope=st.sampled_from(["global", "layer"]))
def test_magnitude_masks_prune_exactly_and_only_the_smallest(weights, sparsity, scope):
    masks = magnitude_masks(weights, sparsity, scope)
    assert masks.keys() == weights.keys()
    groups = [[k] for k in weights] if scope == "layer" else [list(weights)]
    for keys in groups:
        keep = torch.cat([masks[k].flatten() for k in keys])
        mags = torch.cat([weights[k].abs().flatten() for k in keys])
        assert keep.dtype == torch.bool and int((~keep).sum()) == round(sparsity * mags.numel())
        if keep.any() and (~keep).any():
            assert mags[keep].min() >= mags[~keep].max()  # nothing kept is smaller than anything pruned
    for k in weights:
        assert masks[k].shape == weights[k].shape


@given(rows=st.integers(1, 5), groups=st.integers(1, 6), nm=st.sampled_from([(2, 4), (1, 4), (3, 4), (1, 2), (4, 8)]),
       seed=seeds, ties=st.booleans())
def test_nm_masks_keep_exactly_n_largest_of_every_m(rows, groups, nm, seed, ties):
    n, m = nm
    w = rand((rows, groups * m), seed)
    w = torch.round(w) if ties else w
    mask = nm_masks({"w": w}, n, m)["w"]
    assert mask.shape == w.shape
    g_mask, g_mag = mask.reshape(rows, groups, m), w.abs().reshape(rows, groups, m)
    assert (g_mask.sum(-1) == n).all()
    kept_min = torch.where(g_mask, g_mag, torch.inf).amin(-1)
    dropped_max = torch.where(~g_mask, g_mag, -torch.inf).amax(-1)
    assert (kept_min >= dropped_max).all()


# ------------------------------------------------------------------------------------------------- merge
@st.composite
def states(draw, count: int):
    shapes = [(draw(st.integers(1, 4)), draw(st.integers(1, 5))) for _ in range(draw(st.integers(1, 3)))]
    return [{f"t{i}": rand(s, draw(seeds)) for i, s in enumerate(shapes)} for _ in range(count)]


def method_params(method: str, **knobs):
    """The method's own params dataclass with those of ``knobs`` it has."""
    cls = METHODS.get(method).params
    return cls(**{k: v for k, v in knobs.items() if k in {f.name for f in dataclasses.fields(cls)}})


@given(data=st.data(), method=st.sampled_from(METHODS.names()), density=st.floats(0.05, 1.0),
       t=st.floats(0.0, 1.0), seed=st.integers(0, 1000), n=st.integers(2, 3))
def test_merging_identical_models_returns_that_model(data, method, density, t, seed, n):
    if method == "slerp":
        n = 2
    (model,) = data.draw(states(1))
    # With a base, identical models have zero task vectors, so any density/scaling gives the base back.
    base = model if METHODS.get(method).needs_base else None
    scaling = data.draw(st.floats(0.1, 2.0))
    params = method_params(method, density=density, t=t, seed=seed, scaling=scaling)
    out = merge_states([dict(model) for _ in range(n)], [f"m{i}" for i in range(n)], method, params, base=base)
    for k, v in model.items():
        torch.testing.assert_close(out[k], v, atol=1e-5, rtol=1e-5)


@given(data=st.data(), n=st.integers(2, 4))
def test_linear_merge_is_the_normalised_weighted_sum(data, n):
    models = data.draw(states(n))
    weights = [data.draw(st.floats(0.01, 5.0)) for _ in range(n)]
    out = merge_states(models, [f"m{i}" for i in range(n)], "linear", weights=weights)
    scaled = merge_states(models, [f"m{i}" for i in range(n)], "linear", weights=[3 * w for w in weights])
    for k in models[0]:
        expected = sum(w * m[k] for w, m in zip(weights, models)) / sum(weights)
        torch.testing.assert_close(out[k], expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(scaled[k], out[k], atol=1e-5, rtol=1e-5)  # only the weights' ratios matter


@given(data=st.data(), scaling=st.floats(0.0, 2.0))
def test_task_arithmetic_is_base_plus_scaled_weighted_task_vectors(data, scaling):
    a, b, base = data.draw(states(3))
    w = [data.draw(st.floats(0.0, 1.0)), data.draw(st.floats(0.0, 1.0))]
    out = merge_states([a, b], ["a", "b"], "task_arithmetic", method_params("task_arithmetic", scaling=scaling), w, base)
    for k in a:
        expected = base[k] + scaling * (w[0] * (a[k] - base[k]) + w[1] * (b[k] - base[k]))
        torch.testing.assert_close(out[k], expected, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------- quantize
@given(rows=st.integers(1, 6), groups=st.integers(1, 4), group_size=st.sampled_from([2, 8, 32]),
       bits=st.sampled_from([4, 8]), seed=seeds, magnitude=st.floats(1e-3, 10.0))
def test_group_quantization_error_is_at_most_half_a_step(rows, groups, group_size, bits, seed, magnitude):
    w = rand((rows, groups * group_size), seed, magnitude)
    q, scale, zero = quantize_groups(w, bits, group_size)
    assert q.dtype == torch.uint8 and int(q.max()) <= 2**bits - 1
    assert scale.shape == zero.shape == (rows, groups)
    back = dequantize_groups(q, scale, zero, group_size)
    step = scale.float().repeat_interleave(group_size, dim=1)
    # Half a quantization step of the stored float16 scale s. At a group's maximum the clamp to 2**bits - 1
    # adds what rounding the exact scale to float16 lost over the whole range: levels * |s - s_exact|,
    # where float16 rounding is relative 2**-11 (absolute 2**-25 in its subnormal range).
    levels = 2**bits - 1
    err = (back - w).abs()
    bound = 0.5 * step + levels * (2**-11 * step + 2**-25) + 1e-6
    assert (err <= bound).all(), float((err / step).max())
    # Away from the clamp, rounding is to the nearest level: most entries are within half a step.
    assert (err <= 0.5 * step * (1 + 1e-5) + 1e-6).float().mean() >= 0.5
    if bits == 4:
        assert torch.equal(unpack_int4(pack_int4(q)), q)


@given(out_f=st.integers(1, 8), in_f=st.integers(1, 16), seed=seeds, magnitude=st.floats(1e-2, 10.0))
def test_dynamic_int8_weights_within_half_a_step_and_survive_storage(out_f, in_f, seed, magnitude):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(in_f, out_f))
    with torch.no_grad():
        model[0].weight.copy_(rand((out_f, in_f), seed, magnitude))
    qmodel = quantize_dynamic_int8(model)
    qweight = qmodel[0].weight()
    scale = torch.as_tensor(qweight.q_per_channel_scales() if qweight.qscheme() in
                            (torch.per_channel_affine, torch.per_channel_symmetric) else qweight.q_scale())
    scale = scale.reshape(-1, 1) if scale.ndim else scale
    err = (qweight.dequantize() - model[0].weight).abs()
    assert (err <= 0.5 * scale * (1 + 1e-5) + 1e-6).all()  # symmetric int8: round to nearest
    tensors, scheme = int8_tensors(qmodel)
    fresh = torch.nn.Sequential(torch.nn.Linear(in_f, out_f))
    reloaded = load_int8_(fresh, tensors, scheme)
    assert torch.equal(reloaded[0].weight().int_repr(), qweight.int_repr())
    x = rand((3, in_f), seed + 1)
    assert torch.equal(reloaded(x), qmodel(x))


# ----------------------------------------------------------------------------------------------- metrics
def ref_normalize(text: str) -> str:
    """The SQuAD v1.1 normalisation written out: lower, strip punctuation, strip articles, squeeze spaces."""
    text = text.lower()
    text = "".join(c for c in text if c not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def ref_f1(pred: str, gold: str) -> float:
    p, g = ref_normalize(pred).split(), ref_normalize(gold).split()
    if not p or not g:
        return float(p == g)  # SQuAD v2 convention for empty answers
    same = sum((Counter(p) & Counter(g)).values())
    if same == 0:
        return 0.0
    prec, rec = same / len(p), same / len(g)
    return 2 * prec * rec / (prec + rec)


# Answers built from words that exercise normalisation: articles, case, punctuation, repeats.
answers = st.lists(st.sampled_from(["the", "The", "a", "an", "cat", "Cat.", "sat", "mat", "on", "(a)", "x-y",
                                    "xy", "!", "cat,", "An"]), max_size=6).map(" ".join)


@given(pred=answers, golds=st.lists(answers, min_size=1, max_size=3))
def test_squad_em_and_f1_match_the_reference_rules(pred, golds):
    em = squad_metrics.exact_match(pred, golds)
    f1 = squad_metrics.f1_score(pred, golds)
    assert em == float(any(ref_normalize(pred) == ref_normalize(g) for g in golds))
    assert f1 == pytest.approx(max(ref_f1(pred, g) for g in golds))
    assert 0.0 <= f1 <= 1.0 and (em == 0.0 or f1 == 1.0)
    scores = squad_metrics.squad_v1({"q": pred}, {"q": golds})
    assert scores["exact_match"] == pytest.approx(100 * em) and scores["f1"] == pytest.approx(100 * f1)
