"""Pruning by a penalty in the loss: soft movement pruning and L0 regularisation with hard-concrete gates."""

import math

import pytest
import torch
from transformers import BertForSequenceClassification

from pipeline.artifacts import load_model
from pipeline.core.files import atomic_dir
from pipeline.models.compact import compact_model
from pipeline.models.store import save_model
from pipeline.core.errors import PipelineError
from pipeline.data.features import batches, collate
from pipeline.config.args import TrainArgs
from pipeline.prune import PruneContext, prune_
from pipeline.prune.l0 import (
    HardConcreteGate,
    L0Params,
    L0Pruner,
    expected_l0,
    hard_concrete_eval,
    hard_concrete_sample,
)
from pipeline.prune.masks import prunable_weights
from pipeline.prune.soft_movement import (
    SoftMovementParams,
    SoftMovementPruner,
    ThresholdScoredMask,
    cubic_ramp,
    threshold_mask,
)
from pipeline.train.loop import fit
from test_prune_gradual import _features  # the same learnable token-7 task


def _loss(model, batch):
    return model(**batch).loss


def _trainer(feats, args):
    """The stage's ``train`` contract on in-memory features."""

    def train(model, make_hook, loss_fn=None):
        total = math.ceil(args.epochs * math.ceil(len(feats) / args.batch_size))
        hook = make_hook(total)
        history = fit(model, feats, lambda f: collate(f, 0), args, torch.device("cpu"), "t",
                      loss_fn=loss_fn or _loss, after_step=hook)
        return {"history": history, "pruner": hook}

    return train


@torch.no_grad()
def _accuracy(model, feats):
    model.eval()
    right = 0
    for batch in batches(feats, 64, lambda f: collate(f, 0)):
        right += int((model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.argmax(-1)
                      == batch["labels"]).sum())
    return right / len(feats)


@pytest.fixture(scope="module")
def finetuned():
    """A tiny BERT fine-tuned on the rule (the pruning methods start from a fine-tuned model)."""
    from transformers import BertConfig

    config = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, pad_token_id=0)
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    fit(model, _features(256, 0), lambda f: collate(f, 0), TrainArgs(epochs=6, batch_size=16, lr=3e-3),
        torch.device("cpu"), "t")
    acc = _accuracy(model, _features(200, 1))
    assert acc > 0.8, f"the tiny task must be learnt before pruning (accuracy {acc})"
    return model.state_dict(), config


def _copy(finetuned):
    state, config = finetuned
    model = BertForSequenceClassification(config)
    model.load_state_dict(state)
    return model


def _linears(model):
    return {n: m for n, m in model.base_model.encoder.named_modules() if isinstance(m, torch.nn.Linear)}


# ------------------------------------------------------------------------------------- hard concrete
def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


@pytest.mark.parametrize("log_alpha,u", [(0.0, 0.5), (1.0, 0.25), (-0.5, 0.8), (10.0, 0.9), (-10.0, 0.1)])
def test_hard_concrete_sample_matches_hand_computation(log_alpha, u):
    beta, gamma, zeta = 2 / 3, -0.1, 1.1
    s = _sigmoid((math.log(u) - math.log(1 - u) + log_alpha) / beta)
    expected = min(1.0, max(0.0, s * (zeta - gamma) + gamma))
    got = hard_concrete_sample(torch.tensor([log_alpha]), torch.tensor([u]))
    assert float(got) == pytest.approx(expected, abs=1e-6)


def test_hard_concrete_hand_values_and_clipping():
    # log_alpha 0, u 1/2: s = 1/2, stretched to 0.5 * 1.2 - 0.1 = 0.5
    assert float(hard_concrete_sample(torch.tensor(0.0), torch.tensor(0.5))) == pytest.approx(0.5)
    assert float(hard_concrete_sample(torch.tensor(10.0), torch.tensor(0.9))) == 1.0  # clipped at 1
    assert float(hard_concrete_sample(torch.tensor(-10.0), torch.tensor(0.1))) == 0.0  # clipped at 0
    assert float(hard_concrete_eval(torch.tensor(0.0))) == pytest.approx(0.5)
    # sigmoid(-3) * 1.2 - 0.1 = -0.043 -> 0; sigmoid(3) * 1.2 - 0.1 = 1.043 -> 1
    assert float(hard_concrete_eval(torch.tensor(-3.0))) == 0.0 and float(hard_concrete_eval(torch.tensor(3.0))) == 1.0
    assert float(hard_concrete_eval(torch.tensor(1.0))) == pytest.approx(_sigmoid(1.0) * 1.2 - 0.1)


@pytest.mark.parametrize("log_alpha", [-2.0, 0.0, 1.5])
def test_expected_l0_is_the_probability_of_a_nonzero_gate(log_alpha):
    hand = _sigmoid(log_alpha - 2 / 3 * math.log(0.1 / 1.1))
    assert float(expected_l0(torch.tensor(log_alpha))) == pytest.approx(hand, abs=1e-6)
    # and it is what sampling gives: the fraction of non-zero gates over many draws
    g = torch.Generator().manual_seed(0)
    u = torch.rand(200_000, generator=g).clamp(1e-6, 1 - 1e-6)
    sampled = float((hard_concrete_sample(torch.full_like(u, log_alpha), u) > 0).float().mean())
    assert sampled == pytest.approx(hand, abs=0.005)


def test_gates_are_deterministic_in_eval_and_random_in_training():
    torch.manual_seed(0)
    gate = HardConcreteGate(torch.zeros(16, 8), init=0.0, gain=1.0)
    with torch.no_grad():
        gate.raw.normal_(0.0, 3.0)
    gate.eval()
    with torch.no_grad():
        first, second = gate.gates(), gate.gates()
    assert torch.equal(first, second) and float(first.min()) >= 0 and float(first.max()) <= 1
    assert torch.equal(first, hard_concrete_eval(gate.raw * gate.gain))
    gate.train()
    with torch.no_grad():
        draws = [gate.gates() for _ in range(2)]
    assert not torch.equal(*draws)
    assert all(float(d.min()) >= 0 and float(d.max()) <= 1 for d in draws)
    assert 0 < float((draws[0] == 0).float().mean()) < 1  # hard zeros occur in training samples


def test_l0_penalty_and_target_hinge():
    layer = torch.nn.Linear(4, 4)
    pruner = L0Pruner(L0Params(penalty=2.0, log_alpha_init=1.0), {"l": layer})
    hand = 2.0 * _sigmoid(1.0 - 2 / 3 * math.log(0.1 / 1.1))  # lambda * P(gate != 0), the same for every gate
    assert float(pruner.penalty().detach()) == pytest.approx(hand, abs=1e-6)
    pruner.penalty().backward()
    assert bool((pruner.gates[0].raw.grad > 0).all())  # descending the penalty closes every gate
    target = L0Pruner(L0Params(penalty=2.0, log_alpha_init=-4.0, target=0.5), {"l": torch.nn.Linear(4, 4)})
    # expected density already below 1 - target: the hinge is flat, nothing pushes the gates further
    assert float(target.expected_density().detach()) < 0.5 and float(target.penalty().detach()) == 0.0


# ------------------------------------------------------------------------------------- soft movement
def test_threshold_mask_matches_the_definition_with_straight_through_gradient():
    scores = torch.tensor([[-1.0, 0.2, 0.5], [0.49, 0.51, 3.0]], requires_grad=True)
    mask = threshold_mask(scores, 0.5)
    assert torch.equal(mask, torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 1.0]]))
    upstream = torch.arange(6.0).view(2, 3)
    (mask * upstream).sum().backward()
    assert torch.equal(scores.grad, upstream)  # straight-through: masked scores get gradient too
    weight = torch.randn(2, 3)
    param = ThresholdScoredMask(weight, init=1.0, gain=10.0, threshold=0.5)
    with torch.no_grad():
        param.raw.copy_(scores.detach() / 10.0)
    assert torch.equal(param(weight), weight * (scores.detach() > 0.5))


def test_cubic_ramp():
    values = [cubic_ramp(t, 100, 0.1, 0.6) for t in range(101)]
    assert values[0] == values[10] == 0.0 and values[60] == values[100] == 1.0
    assert values[35] == pytest.approx(1 - 0.5**3)
    assert all(a <= b for a, b in zip(values, values[1:]))


def test_soft_movement_penalty_lowers_the_scores(tiny_config):
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config)
    params = SoftMovementParams(reg=5.0, score_init=1.0, score_lr_scale=1.0, begin=0.0, end=0.5)
    pruner = SoftMovementPruner(params, _linears(model)).start(4)
    assert pruner.reg == 0.0 and float(pruner.penalty().detach()) == 0.0  # cubic warm-up starts at 0
    for _ in range(2):
        pruner(model)
    assert pruner.reg == 5.0
    assert float(pruner.penalty().detach()) == pytest.approx(5.0 * _sigmoid(1.0), rel=1e-6)  # lambda * mean(sigmoid(S))
    optimizer = torch.optim.SGD([m.raw for m in pruner.masks], lr=1e4)
    before = torch.cat([m.scores().detach().flatten() for m in pruner.masks])
    for _ in range(3):
        optimizer.zero_grad()
        pruner.penalty().backward()
        optimizer.step()
    after = torch.cat([m.scores().detach().flatten() for m in pruner.masks])
    assert float(after.mean()) < float(before.mean()) - 0.1 and bool((after < before).all())


def test_soft_movement_sparsity_increases_with_lambda(finetuned):
    feats = _features(256, 0)
    args = TrainArgs(epochs=2, batch_size=16, lr=3e-3)
    reached = []
    # lambda multiplies a mean over all scores: a model this small needs a far smaller one than the default
    for reg in (0.0, 0.03, 0.3):
        torch.manual_seed(0)
        model = _copy(finetuned)
        params = SoftMovementParams(reg=reg, score_lr_scale=30.0, end=0.5, train=args)
        reached.append(prune_(model, "soft_movement", params, PruneContext([], _loss, train=_trainer(feats, args)))["sparsity"])
    assert reached[0] < reached[1] < reached[2], reached
    assert reached[2] > 0.5


# ------------------------------------------------------------------------------ both, end to end
CASES = {
    "soft_movement": SoftMovementParams(reg=0.1, score_lr_scale=30.0, end=0.5,
                                        train=TrainArgs(epochs=2, batch_size=16, lr=3e-3)),
    "l0": L0Params(penalty=0.2, gate_lr_scale=200.0, log_alpha_init=2.0,
                   train=TrainArgs(epochs=2, batch_size=16, lr=3e-3)),
}


@pytest.mark.parametrize("method", sorted(CASES))
def test_prunes_keeps_accuracy_and_reloads_identically(method, finetuned, tmp_path, tokenizer):
    params = CASES[method]
    torch.manual_seed(0)
    model = _copy(finetuned)
    keys = set(model.state_dict())
    report = prune_(model, method, params, PruneContext([], _loss, train=_trainer(_features(256, 0), params.train)))
    assert set(model.state_dict()) == keys  # parametrizations removed: a plain BERT again
    assert report["sparsity"] > 0.5, report["sparsity"]
    zeros = sum(int((w == 0).sum()) for w in prunable_weights(model).values())
    assert zeros / sum(w.numel() for w in prunable_weights(model).values()) == report["sparsity"]
    held_out = _features(200, 1)
    acc = _accuracy(model, held_out)
    assert acc > 0.7, acc  # chance is 0.5
    assert report["history"][-1]["loss"] > 0  # the penalty joined the training loss

    tokenizer.save_pretrained(tmp_path / "tok")
    meta = {"stage": "prune", "head": "classification", "format": "dense", "method": method, "results": report}
    with atomic_dir(tmp_path / "out") as tmp:
        tensors, meta = compact_model(model, meta)
        save_model(tmp, model, tmp_path / "tok", meta, tensors=tensors)
    loaded, loaded_meta = load_model(tmp_path / "out", "classification")
    assert loaded_meta["storage"] == "compact"
    batch = collate(held_out[:32], 0)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        assert torch.equal(model.eval()(**inputs).logits, loaded(**inputs).logits)


@pytest.mark.parametrize("method,params", [("soft_movement", SoftMovementParams()), ("l0", L0Params())])
def test_needs_training(method, params):
    with pytest.raises(PipelineError, match=f"prune.{method} prunes while training"):
        prune_(torch.nn.Linear(2, 2), method, params, PruneContext([], None))


@pytest.mark.parametrize("cls,kwargs,message", [
    (SoftMovementParams, {"score_init": 0.0, "threshold": 0.0}, "score_init must be > threshold"),
    (SoftMovementParams, {"reg": -1.0}, "reg must be >= 0"),
    (L0Params, {"target": 1.0}, "target must be in"),
    (L0Params, {"penalty": -1.0}, "penalty must be >= 0"),
])
def test_bad_params(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)
