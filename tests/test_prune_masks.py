"""Magnitude masks on the weights' device equal the stable-sort masks they replace, ties included."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.errors import PipelineError
from pipeline.prune.masks import kth_smallest_key, magnitude_keys, magnitude_masks
from pipeline.prune.nm import nm_masks


def sorted_masks(weights: dict[str, torch.Tensor], sparsity: float, scope: str) -> dict[str, torch.Tensor]:
    """The reference: the code before the device masks (a CPU copy, concatenated, stable-sorted)."""

    def keep_mask(flat):
        mask = torch.ones(flat.numel(), dtype=torch.bool)
        n_prune = round(sparsity * flat.numel())
        if n_prune:
            mask[torch.sort(flat.abs(), stable=True).indices[:n_prune]] = False
        return mask

    if scope == "layer":
        return {k: keep_mask(w.flatten().cpu()).view(w.shape) for k, w in weights.items()}
    mask, out, offset = keep_mask(torch.cat([w.flatten().cpu() for w in weights.values()])), {}, 0
    for k, w in weights.items():
        out[k] = mask[offset: offset + w.numel()].view(w.shape)
        offset += w.numel()
    return out


shapes = st.lists(st.tuples(st.integers(1, 7), st.integers(1, 9)), min_size=1, max_size=4)
dtypes = st.sampled_from([torch.float32, torch.float16, torch.bfloat16, torch.float64])


@settings(max_examples=300, deadline=None)
@given(shapes=shapes, values=st.integers(1, 6), seed=st.integers(0, 2**31 - 1), dtype=dtypes,
       sparsity=st.floats(0.0, 0.999), scope=st.sampled_from(["global", "layer"]), negative_zero=st.booleans())
def test_masks_equal_the_stable_sort(shapes, values, seed, dtype, sparsity, scope, negative_zero):
    # few distinct integer values (of both signs) make many ties at the threshold
    g = torch.Generator().manual_seed(seed)
    weights = {f"w{i}": (torch.randint(-values, values + 1, s, generator=g)).to(dtype) for i, s in enumerate(shapes)}
    if negative_zero:
        weights["w0"].view(-1)[0] = -0.0
    new, old = magnitude_masks(weights, sparsity, scope), sorted_masks(weights, sparsity, scope)
    assert list(new) == list(old)
    for k in old:
        assert new[k].dtype == torch.bool and new[k].shape == weights[k].shape
        assert torch.equal(new[k], old[k]), k


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), sparsity=st.floats(0.0, 0.999), scope=st.sampled_from(["global", "layer"]))
def test_masks_equal_the_stable_sort_on_continuous_weights(seed, sparsity, scope):
    g = torch.Generator().manual_seed(seed)
    weights = {"a": torch.randn(40, 33, generator=g) * 0.02, "b": torch.randn(17, 40, generator=g),
               "c": torch.zeros(5, 8)}
    new, old = magnitude_masks(weights, sparsity, scope), sorted_masks(weights, sparsity, scope)
    assert all(torch.equal(new[k], old[k]) for k in old)


def test_exact_count_at_every_sparsity_with_all_weights_equal():
    weights = {"a": torch.ones(3, 5), "b": -torch.ones(2, 5)}
    for k in range(25):
        masks = magnitude_masks(weights, k / 25, "global")
        pruned = torch.cat([(~m).flatten() for m in masks.values()])
        assert int(pruned.sum()) == k and bool(pruned[:k].all())  # the first k in flat order


def test_kth_smallest_key_is_the_kth_magnitude():
    g = torch.Generator().manual_seed(3)
    tensors = [torch.randn(50, 7, generator=g), torch.randn(31, generator=g)]
    flat = torch.cat([t.flatten() for t in tensors]).abs().sort().values
    for k in (1, 2, 100, 381):
        key, ties, equal = kth_smallest_key(tensors, k)
        assert key == int(magnitude_keys(flat[k - 1:k])) and ties == 1 and sum(equal) == 1


def test_masks_stay_on_the_weights_device_and_reject_bad_input():
    weights = {"a": torch.randn(4, 4)}
    assert magnitude_masks(weights, 0.5)["a"].device == weights["a"].device
    with pytest.raises(PipelineError, match="sparsity"):
        magnitude_masks(weights, 1.0)
    with pytest.raises(PipelineError, match="scope"):
        magnitude_masks(weights, 0.5, "row")


def sorted_nm_masks(weights, n, m):
    out = {}
    for name, w in weights.items():
        groups = w.abs().reshape(w.shape[0], -1, m)
        order = torch.sort(groups, dim=-1, descending=True, stable=True).indices
        out[name] = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, order[..., :n], True).reshape(w.shape)
    return out


@settings(max_examples=100, deadline=None)
@given(rows=st.integers(1, 6), groups=st.integers(1, 5), nm=st.sampled_from([(1, 2), (2, 4), (1, 4), (3, 8)]),
       seed=st.integers(0, 2**31 - 1))
def test_nm_masks_keep_n_of_m_like_the_stable_sort(rows, groups, nm, seed):
    n, m = nm
    w = torch.randint(-2, 3, (rows, groups * m), generator=torch.Generator().manual_seed(seed)).float()
    new = nm_masks({"w": w}, n, m)["w"]
    assert torch.equal(new, sorted_nm_masks({"w": w}, n, m)["w"])
    assert (new.reshape(rows, groups, m).sum(-1) == n).all()
