"""Lottery-ticket pruning: rounds of train -> prune -> rewind to step k, on a tiny BERT and a learnable rule."""

import json

import pytest
import torch
import yaml
from transformers import BertForSequenceClassification

from tools.code_deps import ROOT
from pipeline.config import loader
from pipeline.config.args import TrainArgs
from pipeline.core.errors import PipelineError
from pipeline.data.features import collate
from pipeline.prune import PruneContext, prune_
from pipeline.prune.lottery import LotteryParams, TicketHook, round_sparsity, snapshot
from pipeline.prune.masks import prunable_weights
from pipeline.train.loop import fit
from pipeline.train.batches import total_steps
from pipeline.train.run_files import RunFiles
from test_prune_gradual import _features
from test_sweeps import make_workdir, prune


def recording_train(params: LotteryParams, feats, calls: list, k: int):
    """A ``PruneContext.train`` that records each call's starting weights and, independently of the method's
    hook, the weights after ``k`` optimizer steps of the first call."""

    def train(model, make_hook, loss_fn=None):
        hook = make_hook(total_steps(len(feats), params.train))
        call = {"start": snapshot(model), "at_k": snapshot(model) if k == 0 and not calls else None}
        steps = [0]

        def after(m):
            hook(m)
            steps[0] += 1
            if steps[0] == k and not calls:
                call["at_k"] = snapshot(m)

        history = fit(model, feats, lambda f: collate(f, 0), params.train, torch.device("cpu"), "test",
                      after_step=after)
        calls.append(call)
        return {"history": history, "pruner": hook}

    return train


@torch.no_grad()
def accuracy(model, feats) -> float:
    batch = collate(feats, 0)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return float((logits.argmax(-1) == batch["labels"]).float().mean())


def test_lottery_reaches_the_target_rewinds_under_the_mask_and_learns(tiny_config):
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config)
    feats, calls = _features(192), []
    # the source is fine-tuned, as the prune stage's is
    fit(model, feats, lambda f: collate(f, 0), TrainArgs(epochs=4, batch_size=16, lr=3e-3), torch.device("cpu"), "ft")
    params = LotteryParams(sparsity=0.75, rounds=2, rewind_fraction=0.25,
                           train=TrainArgs(epochs=3, batch_size=16, lr=3e-3))
    k = round(0.25 * total_steps(len(feats), params.train))  # 192 features / 16 = 12 steps an epoch, 36 in all
    report = prune_(model, "lottery", params, PruneContext([], None, train=recording_train(params, feats, calls, k)))

    weights = prunable_weights(model)
    n = sum(w.numel() for w in weights.values())
    assert sum(int((w == 0).sum()) for w in weights.values()) == round(0.75 * n)  # exactly the target
    assert report["rewind_step"] == k == 9 and len(calls) == len(report["rounds"]) == 3
    theta_k = calls[0]["at_k"]
    names = set(weights)
    previous = None
    for i, call in enumerate(calls[1:], start=1):
        kept = {name: call["start"][f"bert.{name}"] != 0 for name in names}
        assert sum(int((~m).sum()) for m in kept.values()) == round(round_sparsity(params, i) * n)
        for key, value in call["start"].items():  # every tensor is its value at step k, pruned weights zero
            expected = torch.where(kept[key[5:]], theta_k[key], 0.0) if key[5:] in names else theta_k[key]
            assert torch.equal(value, expected), (i, key)
        if previous is not None:  # a weight once pruned stays pruned
            assert all(bool((kept[name] <= previous[name]).all()) for name in names)
        previous = kept
    assert [r["sparsity"] for r in report["rounds"]] == [0.0, 0.5, 0.75]
    assert accuracy(model, _features(96, seed=1)) > 0.9  # held-out examples of the rule; chance is 0.5


def test_checkpoints_are_refused_for_lottery_rounds(tmp_path, tiny_config):
    with pytest.raises(ValueError, match="checkpoint_every must be 0"):
        LotteryParams(train=TrainArgs(checkpoint_every=5))
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    data["prune"]["lottery"]["train"]["checkpoint_every"] = 5
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(PipelineError, match="'prune.lottery': prune.lottery.train.checkpoint_every must be 0"):
        loader.load({"prune.lottery": LotteryParams}, file=tmp_path / "params.yaml")
    # the training loop refuses the round's hook too (it keeps no state it could resume)
    model = BertForSequenceClassification(tiny_config)
    with pytest.raises(PipelineError, match="TicketHook cannot save its state"):
        fit(model, _features(32), lambda f: collate(f, 0), TrainArgs(epochs=1, batch_size=16, checkpoint_every=1),
            torch.device("cpu"), "test", after_step=TicketHook(model, {}, 1), files=RunFiles(None, tmp_path / "ck"))


def test_round_sparsity_removes_a_constant_fraction_of_what_is_left():
    params = LotteryParams(sparsity=0.875, rounds=3)
    assert [round(round_sparsity(params, r), 12) for r in range(4)] == [0.0, 0.5, 0.75, 0.875]
    with pytest.raises(ValueError, match="rewind_fraction must be in"):
        LotteryParams(rewind_fraction=1.0)


def test_prune_stage_runs_lottery_with_the_task_trainer(tmp_path, monkeypatch, tiny_config, tokenizer):
    """The stage's ``context.train`` (:func:`pipeline.train.supervised.trainer`) trains each round; the artifact is stored
    compactly at the target sparsity and records the rounds."""
    workdir = make_workdir(tmp_path, monkeypatch, tiny_config, tokenizer)
    data = yaml.safe_load((workdir / "params.yaml").read_text())
    data["prune"]["lottery"].update(sparsity=0.5, rounds=2, rewind_fraction=0.5,
                                    train={"epochs": 2, "batch_size": 8, "lr": 1e-3, "seed": 0})
    (workdir / "params.yaml").write_text(yaml.safe_dump(data))
    assert prune("lottery", "prune-lottery", "--live", "metrics/train/prune/cls-lottery") == 0
    meta = json.loads((workdir / "models" / "cls" / "prune-lottery" / "pipeline.json").read_text())
    results = meta["results"]
    assert results["rewind_step"] == 2 and [r["steps"] for r in results["rounds"]] == [4, 4, 4]
    assert abs(results["sparsity"] - 0.5) < 1e-3 and meta["storage"] == "compact"
    curves = workdir / "metrics" / "train" / "prune" / "cls-lottery" / "plots" / "metrics" / "train"
    assert (curves / "loss.tsv").is_file()  # the curves of the last training (the ticket's)
