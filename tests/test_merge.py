"""Merge methods on small state dicts."""

import pytest
import torch

from pipeline.core.errors import PipelineError
from pipeline.merge import METHODS, merge_states


def merge(states, names, method, base=None, weights=(), **knobs):
    """``merge_states`` with the method's own params built from those of ``knobs`` it has."""
    cls = METHODS.get(method).params
    params = cls(**{k: v for k, v in knobs.items() if k in cls.__dataclass_fields__})
    return merge_states(states, names, method, params, list(weights), base)


def states(n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [{"w": torch.randn(4, 3, generator=g), "b": torch.randn(3, generator=g),
             "ids": torch.arange(3)} for _ in range(n)]


def test_linear_is_the_weighted_mean():
    a, b = states()
    out = merge([a, b], ["a", "b"], "linear", weights=[3.0, 1.0])
    torch.testing.assert_close(out["w"], (3 * a["w"] + b["w"]) / 4)
    assert torch.equal(out["ids"], a["ids"])  # integer buffers are copied, not averaged


def test_merging_identical_models_returns_that_model():
    (a,) = states(1)
    for method in ("linear", "task_arithmetic"):
        base = {k: v * 0.5 if v.is_floating_point() else v for k, v in a.items()}
        out = merge([a, dict(a)], ["a", "a2"], method, base=base, scaling=1.0)
        torch.testing.assert_close(out["w"], a["w"])


def test_task_arithmetic_adds_scaled_task_vectors():
    a, b = states()
    (base,) = states(1, seed=5)
    out = merge([a, b], ["a", "b"], "task_arithmetic", base=base, weights=[1.0, 1.0], scaling=0.5)
    expected = base["w"] + 0.5 * ((a["w"] - base["w"]) + (b["w"] - base["w"]))
    torch.testing.assert_close(out["w"], expected)


def test_shape_mismatch_names_the_tensor():
    a, b = states()
    b["w"] = torch.zeros(5, 3)
    with pytest.raises(PipelineError, match="'w' has shape"):
        merge([a, b], ["a", "b"], "linear")


def test_unknown_method_and_missing_base():
    a, b = states()
    with pytest.raises(PipelineError, match="unknown"):
        merge([a, b], ["a", "b"], "nope")
    with pytest.raises(PipelineError, match="needs a base"):
        merge([a, b], ["a", "b"], "task_arithmetic")
    with pytest.raises(PipelineError, match="merge.weights has 1"):
        merge([a, b], ["a", "b"], "linear", weights=[1.0])


def test_ties_trims_elects_sign_and_takes_the_disjoint_mean():
    base = {"w": torch.zeros(4)}
    a = {"w": torch.tensor([3.0, -1.0, 0.1, 2.0])}
    b = {"w": torch.tensor([1.0, 2.0, -0.2, -5.0])}
    out = merge([a, b], ["a", "b"], "ties", base=base, density=0.5, weights=[1.0, 1.0])
    # trim to 2 of 4 per model: a keeps [3, 0, 0, 2], b keeps [0, 2, 0, -5]
    # signs: +, +, 0, - (2 - 5 < 0); agreeing means: 3, 2, 0, -5
    torch.testing.assert_close(out["w"], torch.tensor([3.0, 2.0, 0.0, -5.0]))


def test_ties_with_full_density_and_agreeing_signs_is_the_mean_of_task_vectors():
    base = {"w": torch.ones(3)}
    a, b = {"w": torch.tensor([2.0, 3.0, 4.0])}, {"w": torch.tensor([4.0, 5.0, 2.0])}
    out = merge([a, b], ["a", "b"], "ties", base=base, density=1.0, weights=[1.0, 1.0])
    torch.testing.assert_close(out["w"], torch.tensor([3.0, 4.0, 3.0]))


def test_dare_keeps_the_requested_fraction_rescaled_and_is_seeded():
    base = {"w": torch.zeros(20000)}
    a = {"w": torch.ones(20000)}
    out = merge([a, dict(a)], ["a", "a2"], "dare_linear", base, weights=[1.0, 0.0], density=0.3, seed=3)
    kept = out["w"] != 0
    assert abs(kept.float().mean().item() - 0.3) < 0.02
    torch.testing.assert_close(out["w"][kept], torch.full((int(kept.sum()),), 1 / 0.3))
    again = merge([a, dict(a)], ["a", "a2"], "dare_linear", base, weights=[1.0, 0.0], density=0.3, seed=3)
    assert torch.equal(out["w"], again["w"])
    # DARE is unbiased: the expected merged task vector equals the plain one.
    assert abs(out["w"].mean().item() - 1.0) < 0.05


def test_dare_ties_runs_and_full_density_equals_ties():
    a, b = states()
    (base,) = states(1, seed=9)
    dt = merge([a, b], ["a", "b"], "dare_ties", base=base, density=1.0)
    t = merge([a, b], ["a", "b"], "ties", base=base, density=1.0)
    torch.testing.assert_close(dt["w"], t["w"])


def test_slerp_endpoints_midpoint_and_norm():
    a = {"w": torch.tensor([1.0, 0.0])}
    b = {"w": torch.tensor([0.0, 1.0])}
    for t, expected in ((0.0, a["w"]), (1.0, b["w"]), (0.5, torch.tensor([0.5**0.5, 0.5**0.5]))):
        out = merge([a, b], ["a", "b"], "slerp", t=t)
        torch.testing.assert_close(out["w"], expected)
    # parallel vectors fall back to linear interpolation
    out = merge([a, {"w": 3 * a["w"]}], ["a", "b"], "slerp", t=0.5)
    torch.testing.assert_close(out["w"], torch.tensor([2.0, 0.0]))
    with pytest.raises(PipelineError, match="exactly two"):
        merge([a, b, a], ["a", "b", "c"], "slerp")


@pytest.mark.parametrize("method", ["linear", "task_arithmetic", "ties", "dare_linear", "dare_ties", "slerp"])
def test_every_method_returns_identical_inputs_unchanged(method):
    (a,) = states(1)
    base = {k: v * 0.5 if v.is_floating_point() else v for k, v in a.items()}
    out = merge([a, dict(a)], ["a", "a2"], method, base=base, density=1.0)
    torch.testing.assert_close(out["w"], a["w"])
