"""``heads_ffn``: heads and FFN neurons pruned together, both ranked on the unpruned model, reload exact."""

import copy

import pytest
import torch
import yaml
from transformers import BertForSequenceClassification

from family_kit import TINY
from tools.code_deps import ROOT
from pipeline import schema
from pipeline.artifacts import load_model
from pipeline.config import loader
from pipeline.core.errors import PipelineError
from pipeline.models import families
from pipeline.models.build import ArchParams, init_model
from pipeline.models.structure import heads_per_layer, intermediate_per_layer
from pipeline.prune import PruneContext, prune_, write_pruned
from pipeline.prune.ffn import FFNParams
from pipeline.prune.heads import HeadsParams
from pipeline.prune.heads_ffn import HeadsFFNParams
from test_prune_structured import _batches, _loss  # the same tiny batches and loss


def _shipped_with(tmp_path, key=None, value=None):
    """A copy of the shipped params.yaml, with ``prune.heads_ffn.<key>`` set to ``value``."""
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    if key is not None:
        data["prune"]["heads_ffn"][key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@torch.no_grad()
def _logits(model, batch):
    return model.eval()(**{k: v for k, v in batch.items() if k != "labels"}).logits


def _params(model):
    return sum(p.numel() for p in model.parameters())


def _bert(tiny_config):
    torch.manual_seed(0)
    return BertForSequenceClassification(tiny_config).eval()


def _reload(model, tmp_path, tokenizer):
    tokenizer.save_pretrained(tmp_path / "tok")
    out = tmp_path / "prune-heads_ffn"
    write_pruned(out, model, tmp_path / "tok", {"stage": "prune", "head": "classification", "format": "dense",
                                                 "method": "heads_ffn"}, compact=False)
    return load_model(out)[0]


def test_shapes_and_size_are_those_of_heads_then_ffn(tiny_config):
    model = _bert(tiny_config)
    sequential = copy.deepcopy(model)
    report = prune_(model, "heads_ffn", HeadsFFNParams(keep_heads=3, keep_ratio=0.3, batches=3),
                    PruneContext(_batches(), _loss))
    # 64 neurons * 0.3 = 19.2 -> 19 per layer
    assert heads_per_layer(model) == [3, 3] == report["heads_per_layer"] == model.config.heads_per_layer
    assert intermediate_per_layer(model) == [19, 19] == report["intermediate_per_layer"]
    assert model.config.intermediate_per_layer == [19, 19]
    assert report["keep_heads"] == 3 and report["keep_ratio"] == 0.3
    assert set(report) == {"keep_heads", "heads_kept", "heads_per_layer", "importance", "keep_ratio",
                           "intermediate_per_layer"}
    prune_(sequential, "heads", HeadsParams(keep_heads=3, batches=3), PruneContext(_batches(), _loss))
    prune_(sequential, "ffn", FFNParams(keep_ratio=0.3, batches=3), PruneContext(_batches(), _loss))
    assert _params(model) == _params(sequential) < _params(_bert(tiny_config))


def test_units_are_ranked_on_the_unpruned_model_as_heads_and_ffn_rank_them(tiny_config):
    """The heads kept are those ``heads`` keeps and the neurons those ``ffn`` keeps, each alone on the unpruned
    model (``heads`` then ``ffn`` would rank the neurons of the head-pruned model instead)."""
    model = _bert(tiny_config)
    with torch.no_grad():  # attention large next to the residual: the neurons' importance depends on the heads
        for layer in model.bert.encoder.layer:
            layer.attention.self.value.weight.mul_(20)
            layer.attention.output.dense.weight.mul_(20)
    heads_only, ffn_only, sequential = copy.deepcopy(model), copy.deepcopy(model), copy.deepcopy(model)
    report = prune_(model, "heads_ffn", HeadsFFNParams(keep_heads=2, keep_ratio=0.5, batches=3),
                    PruneContext(_batches(), _loss))
    heads_report = prune_(heads_only, "heads", HeadsParams(keep_heads=2, batches=3), PruneContext(_batches(), _loss))
    prune_(ffn_only, "ffn", FFNParams(keep_ratio=0.5, batches=3), PruneContext(_batches(), _loss))
    assert report["heads_kept"] == heads_report["heads_kept"]
    torch.testing.assert_close(torch.tensor(report["importance"]), torch.tensor(heads_report["importance"]),
                               rtol=0, atol=2e-6)
    family = families.of(model)
    for layer, h_layer, f_layer in zip(*(family.layers(m) for m in (model, heads_only, ffn_only))):
        for mine, ref in [*zip(family.qkv(layer), family.qkv(h_layer)),
                          (family.attention_output(layer), family.attention_output(h_layer)),
                          (family.ffn_in(layer), family.ffn_in(f_layer)), (family.ffn_out(layer), family.ffn_out(f_layer))]:
            assert torch.equal(mine.weight, ref.weight) and torch.equal(mine.bias, ref.bias)
    # the case tells the two apart: ranked after head pruning, other neurons would stay
    prune_(sequential, "heads", HeadsParams(keep_heads=2, batches=3), PruneContext(_batches(), _loss))
    prune_(sequential, "ffn", FFNParams(keep_ratio=0.5, batches=3), PruneContext(_batches(), _loss))
    assert not torch.equal(sequential.bert.encoder.layer[0].intermediate.dense.weight,
                           model.bert.encoder.layer[0].intermediate.dense.weight)


def test_only_units_that_feed_nothing_go_and_the_artifact_reloads(tiny_config, tokenizer, tmp_path):
    model = _bert(tiny_config)
    with torch.no_grad():  # heads 0, 1 (columns 0..15) and neurons 0..47 feed nothing downstream: zero importance
        for layer in model.bert.encoder.layer:
            layer.attention.output.dense.weight[:, :16] = 0
            layer.output.dense.weight[:, :48] = 0
    batch = _batches(1, seed=5)[0]
    before = _logits(model, batch)
    report = prune_(model, "heads_ffn", HeadsFFNParams(keep_heads=2, keep_ratio=0.25, batches=3),
                    PruneContext(_batches(), _loss))
    assert report["heads_kept"] == {"0": [2, 3], "1": [2, 3]}
    assert intermediate_per_layer(model) == [16, 16]
    for layer in model.bert.encoder.layer:  # the 16 neurons kept are the ones that matter
        assert torch.all(layer.output.dense.weight.abs().sum(0) > 0)
    after = _logits(model, batch)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    reloaded = _reload(model, tmp_path, tokenizer)
    assert heads_per_layer(reloaded) == [2, 2] and intermediate_per_layer(reloaded) == [16, 16]
    torch.testing.assert_close(_logits(reloaded, batch), after, rtol=0, atol=0)


def test_keeping_everything_changes_nothing(tiny_config):
    model = _bert(tiny_config)
    batch = _batches(1, seed=5)[0]
    before = _logits(model, batch)
    prune_(model, "heads_ffn", HeadsFFNParams(keep_heads=4, keep_ratio=1.0, batches=2), PruneContext(_batches(), _loss))
    assert heads_per_layer(model) == [4, 4] and intermediate_per_layer(model) == [64, 64]
    torch.testing.assert_close(_logits(model, batch), before)


@pytest.mark.parametrize("key, value, message", [
    ("keep_ratio", 0, "keep_ratio must be in (0, 1]"),
    ("keep_ratio", 1.5, "keep_ratio must be in (0, 1]"),
    ("keep_heads", 0, "keep_heads and batches must be >= 1"),
    ("batches", 0, "keep_heads and batches must be >= 1"),
])
def test_bad_params_name_the_section(tmp_path, key, value, message):
    with pytest.raises(PipelineError) as err:
        loader.load({"prune.heads_ffn": schema.section_type("prune.heads_ffn")}, file=_shipped_with(tmp_path, key, value))
    assert "prune.heads_ffn" in str(err.value) and message in str(err.value)


def test_shipped_section_parses(tmp_path):
    (params,) = loader.load({"prune.heads_ffn": schema.section_type("prune.heads_ffn")}, file=_shipped_with(tmp_path))
    assert params == HeadsFFNParams(**yaml.safe_load((ROOT / "params.yaml").read_text())["prune"]["heads_ffn"])


def test_more_heads_than_a_layer_has_or_no_data_is_refused_before_anything_changes(tiny_config):
    model = _bert(tiny_config)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(PipelineError, match=r"prune\.heads_ffn\.keep_heads=5 exceeds the heads per layer .*\[4, 4\]"):
        prune_(model, "heads_ffn", HeadsFFNParams(keep_heads=5), PruneContext(_batches(), _loss))
    with pytest.raises(PipelineError, match="prune.heads_ffn needs training batches"):
        prune_(model, "heads_ffn", HeadsFFNParams(), PruneContext([], _loss))
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_modernbert_fused_and_gated_layout(tokenizer, tmp_path):
    """ModernBERT: a fused Wqkv (a head's rows in three blocks) and a GLU Wi (a neuron's rows in two)."""
    torch.manual_seed(0)
    model = init_model(ArchParams(type="modernbert", **TINY), "classification", 64, 0).eval()
    batch = _batches(1, seed=5)[0]
    report = prune_(model, "heads_ffn", HeadsFFNParams(keep_heads=1, keep_ratio=0.5, batches=2),
                    PruneContext(_batches(), _loss))
    layers = TINY["num_hidden_layers"]
    assert heads_per_layer(model) == [1] * layers == report["heads_per_layer"]
    assert intermediate_per_layer(model) == [TINY["intermediate_size"] // 2] * layers
    after = _logits(model, batch)
    assert torch.isfinite(after).all()
    torch.testing.assert_close(_logits(_reload(model, tmp_path, tokenizer), batch), after, rtol=0, atol=0)
