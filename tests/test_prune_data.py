"""Pruning reads only the examples it needs: importance batches encode only their rows, a training method
encodes each split once, and the work runs on the run's device."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from pipeline import tasks
from pipeline.config.args import TrainArgs
from pipeline.data import synthetic
from pipeline.data.features import batches, collate
from pipeline.data.io import write_jsonl
from pipeline.data.vocab import build_tokenizer
from pipeline.prune import IMPORTANCE_BATCH_SIZE, METHODS, EncodedOnce, PruneContext, prune_, register
from pipeline.prune.heads import HeadsParams
from pipeline.prune.magnitude import MagnitudeParams
from pipeline.prune.masks import magnitude_masks, prunable_weights
from pipeline.tasks.classification import ClassificationParams
from pipeline.tasks.qa import QAParams
from pipeline.train.supervised import trainer

CPU = torch.device("cpu")
TASKS = {"cls": ClassificationParams(max_length=48), "qa": QAParams(max_length=48, doc_stride=16, max_answer_length=4)}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("prune-data")
    tok = build_tokenizer(root / "tok")
    for name, make in (("cls", synthetic.generate_classification), ("qa", synthetic.generate_qa)):
        (root / name).mkdir()
        write_jsonl(root / name / "train.jsonl", make(96, 1))
        write_jsonl(root / name / "validation.jsonl", make(24, 2))
    return root, tok


class Counting:
    """A task that records what it reads and encodes (row counts), otherwise the task itself."""

    def __init__(self, task):
        self.task, self.read, self.encoded = task, [], []

    def __getattr__(self, name):
        return getattr(self.__dict__["task"], name)

    def rows(self, data_dir, split):
        self.read.append(split)
        return self.task.rows(data_dir, split)

    def train_features(self, rows, tokenizer):
        self.encoded.append(len(rows))
        return self.task.train_features(rows, tokenizer)


def same_batches(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
                                    for x, y in zip(a, b))


@pytest.mark.parametrize("name", ["cls", "qa"])
def test_importance_batches_encode_only_their_rows_and_equal_the_split_slice(data, name):
    root, tok = data
    task = Counting(tasks.get(TASKS[name]))
    rows = task.task.rows(root / name, "train")
    context = PruneContext.for_task(task, rows, tok, examples=40, batch_size=16)
    assert task.encoded == [40]  # not the 96 rows of the split
    old = list(batches(task.task.train_features(rows, tok)[:40], 16, lambda f: collate(f, tok.pad_token_id)))
    assert same_batches(context.data, old) and sum(len(b["input_ids"]) for b in context.data) == 40
    assert context.loss_fn == task.loss and context.device is None
    assert PruneContext.for_task(task, rows, tok, examples=0).data == [] and task.encoded == [40]


def test_methods_declare_their_importance_batches():
    assert METHODS.get("heads").examples(HeadsParams(batches=3)) == 3 * IMPORTANCE_BATCH_SIZE
    assert METHODS.get("ffn").batches == METHODS.get("layers").batches == "batches"
    for name in ("magnitude", "nm", "gradual", "movement", "lottery", "l0", "soft_movement", "mask_learning"):
        assert METHODS.get(name).examples(METHODS.get(name).params()) == 0, name

    @dataclass
    class P:
        keep: int = 1

    with pytest.raises(ValueError, match="batches 'n' is not a field of P"):
        register("test-bad-batches", P, zeroing=True, batches="n")(lambda model, params, context: {})


def _model(tok):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=tok.pad_token_id)
    return BertForSequenceClassification(config)


def test_a_training_method_reads_and_encodes_each_split_once_with_the_same_result(data):
    root, tok = data
    args = TrainArgs(epochs=1, batch_size=16, lr=1e-3, seed=0)
    models, counts = [], []
    for wrap in (lambda t: t, EncodedOnce):
        task = Counting(tasks.get(TASKS["cls"]))
        train = trainer(wrap(task), root / "cls", tok, args, CPU, "prune test")
        model = _model(tok)
        for _ in range(2):  # two trainings on the same splits (lottery rounds; counting steps then training)
            train(model, lambda total: (lambda m: None))
        models.append(model)
        counts.append((task.read, task.encoded))
    assert counts[0] == (["train", "validation"] * 2, [96, 24] * 2)  # without: once per training
    assert counts[1] == (["train", "validation"], [96, 24])  # once per split
    for a, b in zip(models[0].state_dict().values(), models[1].state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_masks_and_importance_on_the_gpu_equal_the_cpu(data):
    root, tok = data
    cuda = torch.device("cuda")
    model = _model(tok)
    weights = prunable_weights(model)
    on_gpu = magnitude_masks({k: w.to(cuda) for k, w in weights.items()}, 0.6)
    on_cpu = magnitude_masks(weights, 0.6)
    assert all(on_gpu[k].device.type == "cuda" and torch.equal(on_gpu[k].cpu(), on_cpu[k]) for k in on_cpu)
    task, rows = tasks.get(TASKS["cls"]), tasks.get(TASKS["cls"]).rows(root / "cls", "train")
    reports = []
    for device in (CPU, cuda):
        pruned = copy.deepcopy(model)
        context = PruneContext.for_task(task, rows, tok, examples=64, device=device)
        assert all(v.device.type == device.type for b in context.data for v in b.values())
        reports.append(prune_(pruned, "heads", HeadsParams(keep_heads=2, batches=2), context))
        assert next(pruned.parameters()).device.type == device.type  # prune_ moved it to the context's device
    assert reports[0]["heads_kept"] == reports[1]["heads_kept"]
    torch.testing.assert_close(torch.tensor(reports[1]["importance"]), torch.tensor(reports[0]["importance"]),
                               atol=1e-4, rtol=1e-3)


def test_prune_moves_the_model_to_the_contexts_device(tiny_config):
    model = BertForSequenceClassification(tiny_config)
    seen = []
    context = PruneContext([], None, device=CPU)
    model.to = lambda device: seen.append(device) or model  # records the move (a CPU-only check)
    prune_(model, "magnitude", MagnitudeParams(sparsity=0.5), context)
    assert seen == [CPU]


def test_importance_computes_no_weight_gradients_and_restores_the_flags(tiny_config):
    from pipeline.prune.importance import gate_importance

    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config)
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)  # a frozen weight stays frozen
    flags = {k: p.requires_grad for k, p in model.named_parameters()}
    layers = model.bert.encoder.layer
    seen = []

    def loss(m, batch):
        seen.append([p.requires_grad for p in m.parameters()])
        return m(**batch).loss

    g = torch.Generator().manual_seed(0)
    data = [{"input_ids": torch.randint(5, 64, (4, 9), generator=g), "labels": torch.randint(0, 2, (4,), generator=g)}]
    scores = gate_importance(model, [layer.output.dense for layer in layers], [64] * len(layers), data, loss)
    assert seen == [[False] * len(flags)] and all(s.shape == (64,) and bool((s > 0).any()) for s in scores)
    assert {k: p.requires_grad for k, p in model.named_parameters()} == flags
    assert all(p.grad is None for p in model.parameters())
