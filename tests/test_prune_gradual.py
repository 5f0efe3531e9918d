"""Gradual magnitude pruning: the cubic schedule, and training that ends at the exact target sparsity."""

import json

import pytest
import torch
import yaml
from transformers import BertForSequenceClassification

from pipeline.artifacts import load_model
from pipeline.core.errors import PipelineError
from pipeline.data.features import collate
from pipeline.config.args import TrainArgs
from pipeline.prune import PruneContext, prune_
from pipeline.prune.gradual import GradualParams, GradualPruner
from pipeline.prune.masks import cubic_sparsity, prunable_weights, sparsity_report
from pipeline.evaluation.facts import model_facts
from pipeline.train.loop import fit
from test_stage_errors import stage
from test_sweeps import make_workdir, prune


def test_cubic_schedule_shape():
    p = GradualParams(sparsity=0.8, initial_sparsity=0.0, begin=0.1, end=0.6)
    values = [cubic_sparsity(t, 100, p.sparsity, p.initial_sparsity, p.begin, p.end) for t in range(101)]
    assert values[0] == values[10] == 0.0 and values[60] == values[100] == 0.8
    assert all(a <= b for a, b in zip(values, values[1:]))  # never decreases
    # cubic: fast at first, slow near the end (half-way already 7/8 of the target)
    assert values[35] == pytest.approx(0.8 * (1 - 0.5**3))


def _features(n=96, seed=0):
    """A learnable rule: label 1 iff token 7 occurs in the sequence."""
    g = torch.Generator().manual_seed(seed)
    feats = []
    for _ in range(n):
        ids = torch.randint(8, 64, (10,), generator=g)
        label = int(torch.rand(1, generator=g) < 0.5)
        if label:
            ids[int(torch.randint(1, 9, (1,), generator=g))] = 7
        feats.append({"input_ids": [2, *ids.tolist(), 3], "attention_mask": [1] * 12, "labels": label})
    return feats


def test_gradual_pruning_reaches_the_target_and_keeps_pruned_weights_zero(tiny_config):
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config)
    params = GradualParams(sparsity=0.7, begin=0.0, end=0.5, frequency=3,
                           train=TrainArgs(epochs=4, batch_size=16, lr=3e-3))
    feats = _features()
    seen = []

    def train(m, make_hook):
        hook = make_hook(4 * 6)  # 96 features / 16 = 6 steps per epoch

        def after(mm):
            hook(mm)
            seen.append(sparsity_report(mm)["sparsity"])

        history = fit(m, feats, lambda f: collate(f, 0), params.train, torch.device("cpu"), "test", after_step=after)
        return {"history": history, "pruner": hook}

    report = prune_(model, "gradual", params, PruneContext([], None, train=train))
    step = 1 / sum(w.numel() for w in prunable_weights(model).values())
    assert abs(report["sparsity"] - 0.7) <= step
    assert all(a <= b + step for a, b in zip(seen, seen[1:]))  # sparsity only grows while training
    assert seen[len(seen) // 2] >= 0.7 - 0.02  # reached by the end of the pruning window
    assert report["history"][-1]["loss"] < report["history"][0]["loss"]  # it kept learning
    assert report["schedule"][0] == [0, 0.0] or report["schedule"][0] == (0, 0.0)


def test_gradual_needs_training():
    with pytest.raises(PipelineError, match="prune.gradual prunes while training"):
        prune_(torch.nn.Linear(2, 2), "gradual", GradualParams(), PruneContext([], None))


def test_gradual_pruner_updates_only_on_its_frequency(tiny_config):
    model = BertForSequenceClassification(tiny_config)
    pruner = GradualPruner(model, GradualParams(sparsity=0.5, initial_sparsity=0.1, frequency=5, end=1.0), 20)
    assert pruner.schedule == [(0, 0.1)]
    for _ in range(4):
        pruner(model)
    assert len(pruner.schedule) == 1
    pruner(model)
    assert len(pruner.schedule) == 2 and pruner.schedule[-1][0] == 5


def test_movement_pruning_learns_masks_and_leaves_a_plain_sparse_model(tiny_config):
    from pipeline.prune.movement import MovementParams

    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config)
    keys = set(model.state_dict())
    params = MovementParams(sparsity=0.5, end=0.5, train=TrainArgs(epochs=4, batch_size=16, lr=3e-3))
    feats = _features()
    holder = {}

    def train(m, make_hook):
        hook = make_hook(4 * 6)
        holder["scores"] = [p for n, p in m.named_parameters() if n.endswith(".raw")]
        assert holder["scores"], "scores are trainable parameters of the model"
        holder["start"] = [s.detach().clone() for s in holder["scores"]]
        history = fit(m, feats, lambda f: collate(f, 0), params.train, torch.device("cpu"), "test", after_step=hook)
        return {"history": history, "pruner": hook}

    report = prune_(model, "movement", params, PruneContext([], None, train=train))
    assert set(model.state_dict()) == keys  # parametrizations removed: a plain BERT again
    for name, w in prunable_weights(model).items():
        assert abs(float((w == 0).float().mean()) - 0.5) <= 1 / w.numel() + 1e-6, name
    # the scores moved away from their magnitude initialisation: the masks were learned
    assert any(not torch.allclose(a, b) for a, b in zip(holder["scores"], holder["start"]))
    assert report["history"][-1]["loss"] < report["history"][0]["loss"]


def test_movement_needs_training():
    from pipeline.prune.movement import MovementParams

    with pytest.raises(PipelineError, match="prune.movement prunes while training"):
        prune_(torch.nn.Linear(2, 2), "movement", MovementParams(), PruneContext([], None))


def test_mask_learning_trains_only_the_masks(tiny_config):
    from pipeline.prune.mask_learning import MaskLearningParams

    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = MaskLearningParams(sparsity=0.5, end=0.5, train=TrainArgs(epochs=2, batch_size=16, lr=3e-3))

    def train(m, make_hook):
        hook = make_hook(2 * 6)
        history = fit(m, _features(), lambda f: collate(f, 0), params.train, torch.device("cpu"), "t", after_step=hook)
        return {"history": history, "pruner": hook}

    prune_(model, "mask_learning", params, PruneContext([], None, train=train))
    pruned = prunable_weights(model)
    for k, v in model.state_dict().items():
        name = k.removeprefix("bert.")
        if name in pruned:  # every surviving weight is exactly the frozen original
            kept = v != 0
            assert torch.equal(v[kept], before[k][kept]) and abs(float((~kept).float().mean()) - 0.5) < 0.01
        else:
            assert torch.equal(v, before[k]), k  # nothing else moved either


def test_l1_penalty_shrinks_weights(tiny_config):
    from pipeline.train.loop import l1_penalty

    feats = _features()
    norms = {}
    for l1 in (0.0, 1.0):
        torch.manual_seed(0)
        model = BertForSequenceClassification(tiny_config)
        fit(model, feats, lambda f: collate(f, 0), TrainArgs(epochs=2, batch_size=16, lr=3e-3, l1=l1),
            torch.device("cpu"), "t")
        norms[l1] = float(l1_penalty(model).detach())
    assert norms[1.0] < 0.8 * norms[0.0]


def test_prune_then_distill_stages_keep_gradual_sparsity_and_compact_storage(tmp_path, monkeypatch, tiny_config,
                                                                           tokenizer):
    """The prune stage with ``gradual`` (the end-to-end golden run compares ``heads`` only), then the distill
    stage on its output: the task trainer runs the cubic schedule to the target, the artifact is stored
    compactly, the evaluate stage's facts see fewer nonzero parameters and fewer bytes on disk than the dense
    model it came from, and distillation trains the student while its zeros stay zero (stored compactly too)."""
    workdir = make_workdir(tmp_path, monkeypatch, tiny_config, tokenizer)
    data = yaml.safe_load((workdir / "params.yaml").read_text())
    data["prune"]["gradual"].update(frequency=1, train={"epochs": 2, "batch_size": 8, "lr": 1e-3, "seed": 0})
    (workdir / "params.yaml").write_text(yaml.safe_dump(data))
    assert prune("gradual", "prune-gradual", "--live", "metrics/train/prune/cls-gradual") == 0
    out = workdir / "models" / "cls" / "prune-gradual"
    meta = json.loads((out / "pipeline.json").read_text())
    assert meta["storage"] == "compact" and abs(meta["results"]["sparsity"] - 0.6) < 1e-3
    pruned, _ = model_facts(out)
    dense, _ = model_facts(workdir / "models" / "cls" / "finetune")
    assert pruned["params"] == dense["params"] and pruned["nonzero_params"] < dense["nonzero_params"]
    assert pruned["size_bytes"] < dense["size_bytes"]  # compact storage follows sparsity
    distilled = workdir / "models" / "cls" / "distill-gradual"  # the dense model as the teacher
    assert stage("distill").main(["--task", "cls", str(out), "models/cls/finetune", "data/cls", str(distilled)]) == 0
    meta = json.loads((distilled / "pipeline.json").read_text())
    assert meta["storage"] == "compact" and meta["results"]["sparsity"] == pytest.approx(0.6, abs=1e-3)
    before, after = (load_model(path)[0].state_dict() for path in (out, distilled))
    assert any(not torch.equal(before[k], after[k]) for k in before)  # trained
    for name, weight in before.items():
        if name.endswith("dense.weight") and "encoder" in name:
            assert torch.equal(after[name][weight == 0], weight[weight == 0]), name  # the pruned zeros kept
