"""The training loop at scale: micro-batches weighted by loss items (token-averaged losses equal across batch
size / accumulation / processes), ``max_steps``, and the device defaults (precision, workers, numerics)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from torch.optim.optimizer import register_optimizer_step_pre_hook
from transformers import BertConfig, BertForMaskedLM, BertForQuestionAnswering, BertForSequenceClassification

from pipeline import tasks
from pipeline.config.args import TrainArgs
from pipeline.core.runtime import autocast_dtype, loader_workers, set_numerics
from pipeline.data.features import collate
from pipeline.distill.kd import KDParams, kd_loss_fn
from pipeline.tasks.classification import ClassificationParams
from pipeline.tasks.qa import QAParams
from pipeline.train.batches import rank_microbatches
from pipeline.train.loop import default_items, fit
from pipeline.train.run_files import RunFiles
from test_train import parity_feats
from test_train_loop import ROOT, Crash, crash_after, launch_two_processes, no_dropout, varied_feats

CPU = torch.device("cpu")
CONFIG = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
              max_position_embeddings=64, pad_token_id=0)


def mlm_feats(n=8, seed=0):
    """Masked-LM features with their masks fixed per example (so any batching sees the same labels): lengths
    4..14 and 1..6 labelled tokens each, i.e. very uneven token counts per example."""
    g = torch.Generator().manual_seed(seed)
    feats = []
    for _ in range(n):
        length = int(torch.randint(4, 15, (1,), generator=g))
        ids = torch.randint(5, 64, (length,), generator=g).tolist()
        labels = [-100] * length
        for pos in torch.randperm(length, generator=g)[: int(torch.randint(1, min(6, length) + 1, (1,), generator=g))]:
            labels[pos] = ids[pos]
            ids[pos] = 4  # [MASK]
        feats.append({"input_ids": ids, "attention_mask": [1] * length, "labels": labels})
    return feats


def first_gradient(model, feats, args, **kwargs) -> torch.Tensor:
    """The flat gradient the first optimizer step applies (after the step's micro-batches, before clipping
    matters: ``max_grad_norm`` is huge)."""
    grads = []

    def grab(optimizer, *_):
        if not grads:
            grads.append(torch.cat([p.grad.reshape(-1).clone() for g in optimizer.param_groups for p in g["params"]
                                    if p.grad is not None]))

    handle = register_optimizer_step_pre_hook(grab)
    try:
        fit(model, feats, lambda f: collate(f, 0), TrainArgs(**{"epochs": 1, "lr": 1e-3, "max_grad_norm": 1e9,
                                                                  "warmup_ratio": 0.0, **args}), CPU, "g", **kwargs)
    finally:
        handle.remove()
    return grads[0]


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


# ------------------------------------------------------------------------------ loss items
def test_mlm_gradient_is_the_same_for_batch_8_and_batch_4_accumulated_twice():
    """Weighting micro-batches by examples (the loop before items) gave a 119% difference here."""
    feats, grads = mlm_feats(8), []
    for args in ({"batch_size": 8}, {"batch_size": 4, "grad_accum_steps": 2}, {"batch_size": 2, "grad_accum_steps": 4}):
        torch.manual_seed(0)
        grads.append(first_gradient(BertForMaskedLM(no_dropout(BertConfig(**CONFIG))), feats, args))
    assert relative(grads[1], grads[0]) < 1e-5 and relative(grads[2], grads[0]) < 1e-5
    # the test can fail: per-example weighting of the same token means is far off
    per_example = [sum(f["labels"][i] != -100 for i in range(len(f["labels"]))) for f in feats]
    assert max(per_example) >= 3 * min(per_example)


def test_kd_hidden_and_attention_gradients_are_the_same_for_batch_8_and_batch_4_accumulated_twice():
    teacher = BertForSequenceClassification(no_dropout(BertConfig(**CONFIG))).eval()
    task, kd = tasks.get(ClassificationParams()), KDParams(alpha=0.5, hidden_weight=1.0, attention_weight=1.0)
    feats, grads = varied_feats(8), []
    for args in ({"batch_size": 8}, {"batch_size": 4, "grad_accum_steps": 2}):
        torch.manual_seed(1)
        student = BertForSequenceClassification(no_dropout(BertConfig(**CONFIG)))
        grads.append(first_gradient(student, feats, args, loss_fn=kd_loss_fn(teacher, task, kd, student)))
    assert relative(grads[1], grads[0]) < 1e-5


def qa_feats(n=8, seed=0):
    """QA windows of lengths 4..20 (very uneven padding per batch) with start <= end inside each window."""
    g = torch.Generator().manual_seed(seed)
    feats = []
    for _ in range(n):
        length = int(torch.randint(4, 21, (1,), generator=g))
        start = int(torch.randint(1, length - 1, (1,), generator=g))
        end = min(length - 2, start + int(torch.randint(0, 3, (1,), generator=g)))
        feats.append({"input_ids": torch.randint(5, 64, (length,), generator=g).tolist(),
                      "attention_mask": [1] * length, "start_positions": start, "end_positions": end})
    return feats


@pytest.mark.parametrize("distill", [False, True], ids=["hard", "kd"])
def test_qa_gradient_is_the_same_for_batch_8_and_batch_4_accumulated_twice(distill):
    """Padded positions are out of the start/end softmax (hard loss and logit KD): with them in, a window's
    loss depended on its batch's padding and these gradients were 5% apart."""
    task = tasks.get(QAParams(max_length=32, doc_stride=8))
    teacher = BertForQuestionAnswering(no_dropout(BertConfig(**CONFIG))).eval()
    feats, grads = qa_feats(8), []
    for args in ({"batch_size": 8}, {"batch_size": 4, "grad_accum_steps": 2}):
        torch.manual_seed(2)
        student = BertForQuestionAnswering(no_dropout(BertConfig(**CONFIG)))
        loss_fn = kd_loss_fn(teacher, task, KDParams(alpha=0.5), student) if distill else task.loss
        grads.append(first_gradient(student, feats, args, loss_fn=loss_fn))
    assert relative(grads[1], grads[0]) < 1e-5
    lengths = [len(f["input_ids"]) for f in feats]
    assert max(lengths[:4]) != max(lengths[4:])  # the two micro-batches pad to different widths


def test_kd_terms_count_their_own_items():
    task = tasks.get(ClassificationParams())
    model = BertForSequenceClassification(BertConfig(**CONFIG))
    fn = kd_loss_fn(model, task, KDParams(hidden_weight=1.0, attention_weight=1.0), model)
    batch = collate(varied_feats(3), 0)
    lengths = batch["attention_mask"].sum(1).tolist()
    assert fn.items(batch) == {"examples": 3, "hidden": sum(lengths), "attention": sum(n * n for n in lengths)}
    assert fn(model, batch).keys() == fn.items(batch).keys()
    assert fn.items(batch)["hidden"] < batch["attention_mask"].numel()  # padding is not counted


def test_default_items_are_labelled_tokens_or_examples():
    mlm = collate(mlm_feats(3), 0)
    assert default_items(mlm) == {"loss": int((mlm["labels"] != -100).sum())}
    assert default_items(collate(parity_feats(5), 0)) == {"loss": 5}


def test_a_micro_batch_without_masked_tokens_adds_nothing_instead_of_nan():
    feats = mlm_feats(8)
    empty = [{**f, "labels": [-100] * len(f["labels"])} for f in feats[4:]]
    torch.manual_seed(0)
    model = BertForMaskedLM(no_dropout(BertConfig(**CONFIG)))
    history = fit(model, feats[:4] + empty, lambda f: collate(f, 0),
                  TrainArgs(epochs=1, batch_size=4, grad_accum_steps=2, seed=3), CPU, "m")
    assert torch.isfinite(torch.tensor(history[0]["loss"]))
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_padding_pieces_fill_a_short_last_global_batch_with_zero_weight():
    order = list(range(6))  # 2 processes x 4 micro-batches x 4 = 32 per step: 6 examples in 8 pieces
    args = TrainArgs(batch_size=4, grad_accum_steps=4)  # piece sizes 1,1,0,1 | 1,0,1,1
    plain = [rank_microbatches(order, args, r, 2) for r in (0, 1)]
    padded = [rank_microbatches(order, args, r, 2, pad=True) for r in (0, 1)]
    assert [len(idx) for rank in plain for idx, _ in rank] == [1, 1, 0, 1, 1, 0, 1, 1]
    for p, q in zip(plain, padded):
        for (a, w), (b, v) in zip(p, q):
            expected = (a, w) if a else ([0], 0.0)  # a padding piece: the global batch's first example
            assert (b, v) == expected


# ------------------------------------------------------------------------------ two processes
DDP_MLM_SCRIPT = """
import sys, torch
from safetensors.torch import save_file
from transformers import BertConfig, BertForMaskedLM
sys.path.insert(0, {tests!r})
from test_train_items import CONFIG, first_gradient, mlm_feats
from test_train_loop import no_dropout
from pipeline.config.args import LaunchParams
from pipeline.core.runtime import is_main, setup

setup(0, LaunchParams(command="accelerate launch", num_processes=2))
torch.manual_seed(0)
grads = {{}}
for name, args in (("b4", {{"batch_size": 4}}), ("b2x2", {{"batch_size": 2, "grad_accum_steps": 2}}),
                   ("short", {{"batch_size": 2, "grad_accum_steps": 2}})):
    torch.manual_seed(0)
    feats = mlm_feats(3) if name == "short" else mlm_feats(8)  # 3 in 4 pieces: rank 1 gets a padding piece
    grads[name] = first_gradient(BertForMaskedLM(no_dropout(BertConfig(**CONFIG))), feats, args)
if is_main():
    save_file(grads, {out!r} + "/grads.safetensors")
"""


@pytest.mark.slow  # two launched processes
def test_two_processes_give_the_mlm_gradient_of_one_process_on_the_global_batch(tmp_path):
    """2 gloo processes x batch 4 (and x batch 2 x accumulation 2, and a short batch with a padding piece)
    against one process at batch 8 (3 examples): DDP's averaging is undone by the world-size factor."""
    script = tmp_path / "mlm_ddp.py"
    script.write_text(DDP_MLM_SCRIPT.format(tests=str(ROOT / "tests"), out=str(tmp_path)))
    launch_two_processes(script)
    grads = load_file(tmp_path / "grads.safetensors")
    one = {}
    for name, n in (("full", 8), ("short", 3)):
        torch.manual_seed(0)
        one[name] = first_gradient(BertForMaskedLM(no_dropout(BertConfig(**CONFIG))), mlm_feats(n), {"batch_size": 8})
    assert relative(grads["b4"], one["full"]) < 1e-5
    assert relative(grads["b2x2"], one["full"]) < 1e-5
    assert relative(grads["short"], one["short"]) < 1e-5


# ------------------------------------------------------------------------------ max_steps
def test_max_steps_caps_the_run_and_its_schedule(tiny_config, tmp_path):
    feats = parity_feats(32)  # batch 8: 4 steps per epoch
    files = RunFiles(log_dir=tmp_path / "live")
    torch.manual_seed(0)
    history = fit(BertForSequenceClassification(tiny_config), feats, lambda f: collate(f, 0),
                  TrainArgs(epochs=3, batch_size=8, max_steps=6, warmup_ratio=0.0, lr=1e-3), CPU, "cap",
                  on_epoch=lambda e, m: {"x": float(e)}, files=files)
    files.done()
    assert [r["epoch"] for r in history] == [1, 2] and [r["x"] for r in history] == [1.0, 2.0]
    rows = (tmp_path / "live/plots/metrics/train/lr.tsv").read_text().splitlines()[1:]
    lrs = [float(r.split("\t")[-1]) for r in rows]
    assert len(lrs) == 6  # 6 steps, the schedule decays to 0 over those 6 (not over 12)
    assert lrs == pytest.approx([1e-3 * (6 - s) / 6 for s in range(6)])
    with pytest.raises(ValueError, match="max_steps"):
        TrainArgs(max_steps=-1)


def test_max_steps_run_resumes_to_identical_weights(tiny_config, tmp_path):
    feats = varied_feats(40)
    args = TrainArgs(epochs=3, batch_size=8, max_steps=7, checkpoint_every=2)

    def run(**kwargs):
        torch.manual_seed(0)
        model = BertForSequenceClassification(tiny_config)
        history = fit(model, feats, lambda f: collate(f, 0), args, CPU, "cap", **kwargs)
        return model.state_dict(), history

    ref, ref_history = run()
    files = RunFiles.beside(tmp_path / "model")
    with pytest.raises(Crash):
        run(after_step=crash_after(6), files=files)
    resumed, history = run(files=files)
    assert all(torch.equal(v, resumed[k]) for k, v in ref.items()) and history == ref_history
    assert len(history) == 2  # 5 steps per epoch: epoch 2 stops after 2 of its steps


# ------------------------------------------------------------------------------ device defaults
def test_defaults_choose_by_device_and_keep_cpu_runs_as_they_were():
    args = TrainArgs()
    assert args.precision == "auto" and autocast_dtype(args.precision, CPU) is None
    assert args.num_workers == -1 and loader_workers(-1, CPU) == 0 and loader_workers(3, CPU) == 3
    assert 1 <= loader_workers(-1, torch.device("cuda")) <= 4  # a pure function of the device: no GPU needed
    with pytest.raises(ValueError, match="num_workers"):
        TrainArgs(num_workers=-2)
    set_numerics(CPU)
    assert torch.are_deterministic_algorithms_enabled()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_numerics_allow_tf32_and_skip_deterministic_algorithms():
    before = torch.are_deterministic_algorithms_enabled(), torch.get_float32_matmul_precision()
    try:
        torch.use_deterministic_algorithms(False)
        set_numerics(torch.device("cuda"))
        assert torch.get_float32_matmul_precision() == "high" and torch.backends.cuda.matmul.allow_tf32
        assert not torch.are_deterministic_algorithms_enabled()
        assert autocast_dtype("auto", torch.device("cuda")) is torch.bfloat16
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=True)
        torch.set_float32_matmul_precision(before[1])

