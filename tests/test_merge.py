"""Merge methods on small state dicts."""

import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.merge import merge_states
from pipeline.params import MergeParams


def states(n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [{"w": torch.randn(4, 3, generator=g), "b": torch.randn(3, generator=g),
             "ids": torch.arange(3)} for _ in range(n)]


def test_linear_is_the_weighted_mean():
    a, b = states()
    out = merge_states([a, b], ["a", "b"], MergeParams(method="linear", weights=[3.0, 1.0]))
    torch.testing.assert_close(out["w"], (3 * a["w"] + b["w"]) / 4)
    assert torch.equal(out["ids"], a["ids"])  # integer buffers are copied, not averaged


def test_merging_identical_models_returns_that_model():
    (a,) = states(1)
    for method in ("linear", "task_arithmetic"):
        base = {k: v * 0.5 if v.is_floating_point() else v for k, v in a.items()}
        out = merge_states([a, dict(a)], ["a", "a2"], MergeParams(method=method, scaling=1.0), base)
        torch.testing.assert_close(out["w"], a["w"])


def test_task_arithmetic_adds_scaled_task_vectors():
    a, b = states()
    (base,) = states(1, seed=5)
    out = merge_states([a, b], ["a", "b"], MergeParams(method="task_arithmetic", weights=[1.0, 1.0], scaling=0.5), base)
    expected = base["w"] + 0.5 * ((a["w"] - base["w"]) + (b["w"] - base["w"]))
    torch.testing.assert_close(out["w"], expected)


def test_shape_mismatch_names_the_tensor():
    a, b = states()
    b["w"] = torch.zeros(5, 3)
    with pytest.raises(PipelineError, match="'w' has shape"):
        merge_states([a, b], ["a", "b"], MergeParams(method="linear"))


def test_unknown_method_and_missing_base():
    a, b = states()
    with pytest.raises(PipelineError, match="unknown"):
        merge_states([a, b], ["a", "b"], MergeParams(method="nope"))
    with pytest.raises(PipelineError, match="needs a base"):
        merge_states([a, b], ["a", "b"], MergeParams(method="task_arithmetic"))
    with pytest.raises(PipelineError, match="merge.weights has 1"):
        merge_states([a, b], ["a", "b"], MergeParams(method="linear", weights=[1.0]))
