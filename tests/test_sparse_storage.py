"""Compact (bitmask + values) storage: exact round trip, size follows sparsity, corrupt input is caught."""

import pytest
import torch
from transformers import BertForSequenceClassification

from pipeline.artifacts import load_model
from pipeline.core.errors import PipelineError
from pipeline.core.files import atomic_dir
from pipeline.evaluation.facts import model_facts
from pipeline.models.compact import compact, compact_model, expand
from pipeline.models.store import WEIGHTS, save_model
from pipeline.prune import PruneContext, prune_
from pipeline.prune.magnitude import MagnitudeParams


def test_round_trip_is_exact_and_only_sparse_matrices_are_compacted():
    g = torch.Generator().manual_seed(0)
    sparse = torch.randn(7, 13, generator=g) * (torch.rand(7, 13, generator=g) < 0.3)
    dense = torch.randn(4, 4, generator=g)
    state = {"a": sparse, "b": dense, "c": torch.zeros(5), "ids": torch.arange(3)}
    tensors, names = compact(state)
    assert names == ["a"] and "b" in tensors and "a" not in tensors
    out = expand(tensors)
    assert out.keys() == state.keys()
    for k in state:
        assert torch.equal(out[k], state[k])


def test_corrupt_compact_tensor_is_named():
    tensors, _ = compact({"w": torch.tensor([[0.0, 1.0], [0.0, 0.0]])})
    tensors["w.__values"] = torch.tensor([1.0, 2.0])
    with pytest.raises(PipelineError, match="'w' has 2 values for 1 set bits"):
        expand(tensors, "f")


@pytest.mark.parametrize("sparsity", [0.5, 0.9])
def test_pruned_artifact_is_smaller_on_disk_and_reloads_identically(tmp_path, tiny_config, tokenizer, sparsity):
    tokenizer.save_pretrained(tmp_path / "tok")
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config).eval()
    prune_(model, "magnitude", MagnitudeParams(sparsity=sparsity), PruneContext([], None))
    meta = {"stage": "prune", "head": "classification", "format": "dense", "task": "cls"}
    paths = {}
    for name, flag in (("dense", False), ("compact", True)):
        tensors, stored_meta = compact_model(model, meta) if flag else (None, meta)
        with atomic_dir(tmp_path / name) as tmp:
            save_model(tmp, model, tmp_path / "tok", stored_meta, tensors=tensors)
        paths[name] = tmp_path / name
    sizes = {k: (p / WEIGHTS).stat().st_size for k, p in paths.items()}
    assert sizes["compact"] < sizes["dense"]
    loaded, loaded_meta = load_model(paths["compact"], "classification")
    assert loaded_meta["storage"] == "compact"
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    facts = {k: model_facts(p)[0] for k, p in paths.items()}
    for key in ("params", "nonzero_params", "sparsity"):
        assert facts["compact"][key] == facts["dense"][key]
