"""The training loop's scaling features on tiny models (CPU): gradient accumulation, length grouping,
dvclive curves, resumable checkpoints, data parallelism under ``accelerate launch`` (2 processes, gloo);
bf16 autocast and ``torch.compile`` under the ``gpu`` marker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertForSequenceClassification

from pipeline.config.args import LaunchParams, TrainArgs
from pipeline.core.errors import PipelineError
from pipeline.core.runtime import autocast_dtype, setup
from pipeline.data.features import collate
from pipeline.train.loop import fit
from pipeline.train.batches import epoch_order, rank_microbatches
from pipeline.train.run_files import RunFiles
from test_train import parity_feats

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def no_dropout(config: BertConfig) -> BertConfig:
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0
    return config


def trained(config, feats, args, **kwargs):
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    history = fit(model, feats, lambda f: collate(f, 0), args, CPU, "t", **kwargs)
    return model, history


def varied_feats(n=96, seed=0):
    """Parity features cut to random lengths 4..12 (so batches need padding)."""
    g = torch.Generator().manual_seed(seed + 100)
    feats = parity_feats(n, seed)
    for f in feats:
        keep = int(torch.randint(4, 13, (1,), generator=g))
        f["input_ids"], f["attention_mask"] = f["input_ids"][:keep], f["attention_mask"][:keep]
    return feats


def close(a: dict, b: dict, atol=1e-6) -> bool:
    return all(torch.allclose(a[k], b[k], atol=atol, rtol=1e-5) for k in a)


# ------------------------------------------------------------------------------ accumulation
def test_accumulating_k_micro_batches_equals_one_k_times_larger_batch(tiny_config):
    config, feats = no_dropout(tiny_config), parity_feats(32)
    torch.manual_seed(0)
    init = BertForSequenceClassification(config).state_dict()
    big, _ = trained(config, feats, TrainArgs(epochs=1, batch_size=32, lr=1e-2, warmup_ratio=0.0))
    acc, _ = trained(config, feats, TrainArgs(epochs=1, batch_size=8, grad_accum_steps=4, lr=1e-2, warmup_ratio=0.0))
    small, _ = trained(config, feats, TrainArgs(epochs=1, batch_size=8, lr=1e-2, warmup_ratio=0.0))
    assert not close(big.state_dict(), init, atol=1e-4)  # one real update happened
    assert close(acc.state_dict(), big.state_dict())
    assert not close(small.state_dict(), big.state_dict())  # 4 steps of 8 are a different thing


def test_loss_goes_down_with_gradient_accumulation(tiny_config):
    _, history = trained(tiny_config, parity_feats(512), TrainArgs(epochs=4, batch_size=8, grad_accum_steps=4, lr=2e-3))
    assert history[-1]["loss"] < 0.7 * history[0]["loss"]


# ------------------------------------------------------------------------------ data order
def test_group_by_length_keeps_every_example_once_and_cuts_padding():
    lengths = [len(f["input_ids"]) for f in varied_feats(500)]
    args = TrainArgs(batch_size=8, grad_accum_steps=2, group_by_length=True)
    plain = TrainArgs(batch_size=8, grad_accum_steps=2)

    def padding(order):
        return sum(max(lengths[i] for i in order[s : s + 8]) * len(order[s : s + 8]) - sum(lengths[i] for i in order[s : s + 8])
                   for s in range(0, len(order), 8))

    for epoch in range(3):
        grouped = epoch_order(lengths, args, epoch, world_size=2)
        assert sorted(grouped) == list(range(500))
        assert padding(grouped) < 0.5 * padding(epoch_order(lengths, plain, epoch))
    assert epoch_order(lengths, args, 0, 2) != epoch_order(lengths, args, 1, 2)  # still shuffled per epoch


def test_processes_share_each_global_batch_without_overlap():
    order = list(range(45))  # 2 processes x 2 micro-batches x 4 = 16 per step: last step is short (13)
    args = TrainArgs(batch_size=4, grad_accum_steps=2)
    pieces = [rank_microbatches(order, args, r, 2) for r in (0, 1)]
    assert len(pieces[0]) == len(pieces[1]) == 6  # same number of micro-batches: no process waits forever
    seen = sorted(i for rank in pieces for idx, _ in rank for i in idx)
    assert seen == order
    for step in range(3):  # the weights of one step sum to 1 over both processes
        assert sum(w for rank in pieces for _, w in rank[2 * step : 2 * step + 2]) == pytest.approx(1.0)


def test_fit_with_grouping_sees_every_example_once_per_epoch(tiny_config):
    feats = varied_feats(40)
    for i, f in enumerate(feats):
        f["idx"] = i
    seen: list[list[int]] = [[]]

    def loss(model, batch):
        seen[-1] += batch.pop("idx").tolist()
        return model(**batch).loss

    def next_epoch(epoch, model):
        seen.append([])
        return {}

    args = TrainArgs(epochs=2, batch_size=6, grad_accum_steps=2, group_by_length=True)
    trained(tiny_config, feats, args, loss_fn=loss, on_epoch=next_epoch)
    assert [sorted(s) for s in seen[:2]] == [list(range(40))] * 2 and seen[2] == []


def test_worker_processes_collate_the_same_batches(tiny_config):
    feats, args = varied_feats(48), TrainArgs(epochs=1, batch_size=8, group_by_length=True)
    a, _ = trained(tiny_config, feats, args)
    b, _ = trained(tiny_config, feats, TrainArgs(**{**vars(args), "num_workers": 2}))
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_mlm_masks_with_workers_differ_per_batch_and_resume_exactly(tokenizer, tmp_path):
    from transformers import BertForMaskedLM

    from pipeline.data.features import MlmCollator, encode_text

    rows = [{"text": " ".join(["the movie was good and not bad"] * (1 + i % 3))} for i in range(40)]
    feats = encode_text(rows, tokenizer, 32)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, pad_token_id=0)
    args = TrainArgs(epochs=2, batch_size=8, num_workers=2, checkpoint_every=2)
    seen = []

    def run(hook=None, record=False, ckpt=True):
        torch.manual_seed(0)
        model = BertForMaskedLM(config)

        def loss(m, batch):
            if record:
                seen.append(batch["labels"].ne(-100).nonzero().tolist())
            return m(**batch).loss

        fit(model, feats, MlmCollator(tokenizer, 0.15, 0), args, CPU, "mlm", loss_fn=loss, after_step=hook,
            files=RunFiles.beside(tmp_path / "m") if ckpt else None)
        return model.state_dict()

    ref = run(record=True, ckpt=False)
    assert len({str(s) for s in seen}) == len(seen)  # masks differ from batch to batch
    with pytest.raises(Crash):
        run(crash_after(7))
    resumed = run()
    assert all(torch.equal(v, resumed[k]) for k, v in ref.items())


# ------------------------------------------------------------------------------ curves
def test_dvclive_curves_per_step_and_epoch_are_reproducible(tiny_config, tmp_path):
    args = TrainArgs(epochs=2, batch_size=16)
    for run in ("a", "b"):
        files = RunFiles(log_dir=tmp_path / run)
        trained(tiny_config, parity_feats(64), args, on_epoch=lambda e, m: {"accuracy": 0.5 + e / 10}, files=files)
        assert not (tmp_path / run).exists()  # staged until the stage has written its artifact
        files.done()
    plots = tmp_path / "a" / "plots" / "metrics"
    loss = (plots / "train" / "loss.tsv").read_text().splitlines()
    assert loss[0] == "step\tloss" and [r.split("\t")[0] for r in loss[1:]] == [str(s) for s in range(1, 9)]
    assert (plots / "eval" / "accuracy.tsv").read_text().splitlines() == ["step\taccuracy", "4\t0.6", "8\t0.7"]
    assert (plots / "train" / "lr.tsv").exists() and (plots / "train" / "epoch_loss.tsv").exists()
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert all(p.suffix == ".tsv" for p in files)  # every file is a plot (dvc.yaml plots the directory)
    for p in files:  # no timestamps: a rerun writes the same bytes
        assert (tmp_path / "a" / p).read_bytes() == (tmp_path / "b" / p).read_bytes()


def test_a_killed_run_leaves_the_previous_curves_and_no_temporary_directory(tiny_config, tmp_path):
    live = tmp_path / "metrics" / "live"
    files = RunFiles.beside(tmp_path / "model", live)

    def train(lr, **kwargs):
        args = TrainArgs(epochs=2, batch_size=16, lr=lr)
        trained(tiny_config, parity_feats(64), args, on_epoch=lambda e, m: {"x": float(e)}, files=files, **kwargs)

    def curves():
        return {str(p.relative_to(live)): p.read_bytes() for p in live.rglob("*") if p.is_file()}

    train(1e-3)
    files.done()
    previous = curves()
    assert "plots/metrics/eval/x.tsv" in previous
    with pytest.raises(Crash):  # dies mid-training, after 3 of 8 steps
        train(2e-3, after_step=crash_after(3))
    assert curves() == previous and sorted(live.parent.iterdir()) == [live]
    stale = live.parent / ".live.tmp-999999999"  # what a SIGKILLed run leaves (its pid is gone)
    stale.mkdir()
    (stale / "loss.tsv").write_text("step\tloss\n1\t0.7\n")
    train(2e-3)
    assert not stale.exists() and curves() == previous  # the next run cleans up, still staging its own
    files.done()
    assert sorted(live.parent.iterdir()) == [live]
    new = curves()
    assert new.keys() == previous.keys() and new != previous
    assert len(new["plots/metrics/train/loss.tsv"].decode().splitlines()) == 1 + 8


# ------------------------------------------------------------------------------ checkpoints
class Crash(Exception):
    pass


def crash_after(step):
    count = [0]

    def hook(model):
        count[0] += 1
        if count[0] == step:
            raise Crash(f"killed after step {step}")

    return hook


def test_killed_run_resumes_to_byte_identical_weights_and_curves(tiny_config, tmp_path):
    feats = varied_feats(70)  # dropout stays on: RNG state must be restored too
    args = TrainArgs(epochs=2.5, batch_size=8, grad_accum_steps=2, group_by_length=True, checkpoint_every=3)
    ref_files = RunFiles(tmp_path / "ref")
    ref, ref_history = trained(tiny_config, feats, TrainArgs(**{**vars(args), "checkpoint_every": 0}),
                               on_epoch=lambda e, m: {"x": float(e)}, files=ref_files)
    ref_files.done()
    files = RunFiles.beside(tmp_path / "model", tmp_path / "live")
    with pytest.raises(Crash):  # dies in epoch 2 (5 steps per epoch), last checkpoint at step 6
        trained(tiny_config, feats, args, after_step=crash_after(8), on_epoch=lambda e, m: {"x": float(e)}, files=files)
    ckpt = tmp_path / "model.ckpt"
    names = sorted(p.name for p in ckpt.iterdir())
    assert names[0] == "state.json" and len(names) == 2 and names[1].endswith(".safetensors")  # tensors + index
    assert not (tmp_path / "model").exists() and not (tmp_path / "live").exists()
    resumed, history = trained(tiny_config, feats, args, on_epoch=lambda e, m: {"x": float(e)}, files=files)
    files.done()
    a, b = ref.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert history == ref_history
    for tsv in ("train/loss.tsv", "train/lr.tsv", "train/epoch_loss.tsv", "eval/x.tsv"):
        assert (tmp_path / "live/plots/metrics" / tsv).read_bytes() == (tmp_path / "ref/plots/metrics" / tsv).read_bytes()
    assert not ckpt.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["live", "ref"]


def test_checkpoint_of_other_settings_is_not_resumed(tiny_config, tmp_path, capsys):
    files = RunFiles.beside(tmp_path / "model")
    args = TrainArgs(epochs=1, batch_size=8, checkpoint_every=2)
    with pytest.raises(Crash):
        trained(tiny_config, parity_feats(64), args, after_step=crash_after(5), files=files)
    other = TrainArgs(epochs=1, batch_size=8, checkpoint_every=2, lr=1e-3)
    fresh, _ = trained(tiny_config, parity_feats(64), other)
    resumed, _ = trained(tiny_config, parity_feats(64), other, files=files)
    assert "ignoring" in capsys.readouterr().out
    assert all(torch.equal(v, resumed.state_dict()[k]) for k, v in fresh.state_dict().items())


def test_stateful_hook_without_saved_state_refuses_checkpoints(tiny_config, tmp_path):
    class Schedule:  # like the gradual pruner: counts steps, cannot save them
        step = 0

        def __call__(self, model):
            self.step += 1

    args = TrainArgs(epochs=1, batch_size=8, checkpoint_every=2)
    with pytest.raises(PipelineError, match="training hook Schedule cannot save its state"):
        trained(tiny_config, parity_feats(16), args, after_step=Schedule(), files=RunFiles.beside(tmp_path / "m"))
    trained(tiny_config, parity_feats(16), args, after_step=lambda m: None, files=RunFiles.beside(tmp_path / "m"))


# ------------------------------------------------------------------------------ params, launch
def test_settings_are_validated():
    with pytest.raises(ValueError, match="grad_accum_steps"):
        TrainArgs(grad_accum_steps=0)
    with pytest.raises(ValueError, match="checkpoint_every"):
        TrainArgs(checkpoint_every=-1)
    with pytest.raises(ValueError, match="accelerate launch"):
        LaunchParams(command="python", num_processes=2)
    with pytest.raises(PipelineError, match="'launch.num_processes' is 2 but 1 process"):
        setup(0, LaunchParams(command="accelerate launch --num_processes 2", num_processes=2))


def test_accelerate_launch_settings_do_not_change_the_loop(tiny_config, monkeypatch):
    """``accelerate launch --gradient_accumulation_steps/--mixed_precision`` set these; the Accelerator of the
    loop must ignore them (accumulation and precision are TrainArgs)."""
    args, feats = TrainArgs(epochs=1, batch_size=16), parity_feats(32)
    plain, _ = trained(tiny_config, feats, args)
    monkeypatch.setenv("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "4")
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")
    launched, _ = trained(tiny_config, feats, args)
    assert all(torch.equal(v, launched.state_dict()[k]) for k, v in plain.state_dict().items())


def test_precision_auto_is_fp32_on_cpu():
    assert autocast_dtype("auto", CPU) is None and autocast_dtype("fp32", CPU) is None
    assert autocast_dtype("bf16", CPU) is torch.bfloat16


DDP_SCRIPT = """
import sys, torch
from pathlib import Path
from safetensors.torch import save_file
from transformers import BertConfig, BertForSequenceClassification
sys.path.insert(0, {tests!r})
from test_train import parity_feats
from pipeline.config.args import LaunchParams, TrainArgs
from pipeline.core.runtime import is_main, setup, world
from pipeline.data.features import collate
from pipeline.train.loop import fit
from pipeline.train.run_files import RunFiles

device = setup(0, LaunchParams(command="accelerate launch", num_processes=2))
config = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                    max_position_embeddings=64, pad_token_id=0, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
torch.manual_seed(world()[0])  # different on each rank: fit must start every rank from rank 0's weights
model = BertForSequenceClassification(config)
if is_main():
    save_file(model.state_dict(), {out!r} + "/init.safetensors")
files = RunFiles(log_dir=Path({out!r}) / "live")
fit(model, parity_feats(26), lambda f: collate(f, 0), TrainArgs(epochs=1, batch_size=4, grad_accum_steps=2, lr=1e-2),
    device, "ddp", files=files)
files.done()
if is_main():
    save_file(model.state_dict(), {out!r} + "/model.safetensors")
    with open({out!r} + "/writes.log", "a") as f:
        f.write("written\\n")
with open({out!r} + f"/done-{{world()[0]}}-of-{{world()[1]}}", "w") as f:
    f.write(str(device))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_two_processes(script: Path) -> subprocess.CompletedProcess:
    """Run ``script`` under ``accelerate launch`` with 2 CPU processes (gloo); fails the test on a non-zero exit."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(free_port()), str(script)]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow  # two launched processes
def test_two_processes_under_accelerate_launch_equal_one_process_on_the_global_batch(tmp_path):
    script = tmp_path / "train_ddp.py"
    script.write_text(DDP_SCRIPT.format(tests=str(ROOT / "tests"), out=str(tmp_path)))
    result = launch_two_processes(script)
    assert sorted(p.name for p in tmp_path.glob("done-*")) == ["done-0-of-2", "done-1-of-2"]
    assert (tmp_path / "writes.log").read_text() == "written\n"  # the artifact is written once, by rank 0
    # 26 examples, global batch 2 processes x 2 micro-batches x 4 = 16: steps of 16 and a short one of 10
    assert len((tmp_path / "live/plots/metrics/train/loss.tsv").read_text().splitlines()) == 1 + 2
    model = BertForSequenceClassification(no_dropout(BertConfig(
        vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=64, pad_token_id=0)))
    model.load_state_dict(load_file(tmp_path / "init.safetensors"))
    fit(model, parity_feats(26), lambda f: collate(f, 0), TrainArgs(epochs=1, batch_size=16, lr=1e-2), CPU, "one")
    assert close(model.state_dict(), load_file(tmp_path / "model.safetensors"), atol=1e-5)


DDP_RESUME_SCRIPT = """
import sys, torch
from pathlib import Path
from transformers import BertConfig, BertForSequenceClassification
sys.path.insert(0, {tests!r})
from test_train_loop import Crash, crash_after, varied_feats
from pipeline.config.args import LaunchParams, TrainArgs
from pipeline.core.runtime import is_main, setup
from pipeline.data.features import collate
from pipeline.train.loop import fit
from pipeline.train.run_files import RunFiles

device = setup(0, LaunchParams(command="accelerate launch", num_processes=2))
config = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                    max_position_embeddings=64, pad_token_id=0)  # dropout on: per-process RNG states matter
args = TrainArgs(epochs=2, batch_size=4, grad_accum_steps=2, group_by_length=True, checkpoint_every=2)
feats = varied_feats(40)

def run(files, hook=None):
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    fit(model, feats, lambda f: collate(f, 0), args, device, "ddp", after_step=hook, files=files)
    return model.state_dict()

ref = run(None)
files = RunFiles.beside(Path({out!r}) / "model")
try:
    run(files, crash_after(5))
except Crash:
    pass
resumed = run(files)
if is_main():
    same = all(torch.equal(v, resumed[k]) for k, v in ref.items())
    Path({out!r}, "result").write_text("identical" if same else "different")
"""


@pytest.mark.slow  # two launched processes
def test_two_processes_resume_to_identical_weights(tmp_path):
    script = tmp_path / "resume_ddp.py"
    script.write_text(DDP_RESUME_SCRIPT.format(tests=str(ROOT / "tests"), out=str(tmp_path)))
    result = launch_two_processes(script)
    assert "resumed from" in result.stdout
    assert (tmp_path / "result").read_text() == "identical"


# ------------------------------------------------------------------------------ GPU only
@gpu
@needs_cuda
def test_bf16_autocast_trains_on_gpu(tiny_config):
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config)
    args = TrainArgs(epochs=4, batch_size=32, lr=2e-3, precision="auto")
    assert autocast_dtype("auto", torch.device("cuda")) is torch.bfloat16
    history = fit(model, parity_feats(512), lambda f: collate(f, 0), args, torch.device("cuda"), "bf16")
    assert history[-1]["loss"] < 0.7 * history[0]["loss"]
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast: fp32 master weights


@gpu
@needs_cuda
def test_compiled_training_matches_eager_on_gpu(tiny_config):
    feats, args = varied_feats(64), TrainArgs(epochs=1, batch_size=16, lr=1e-3)
    states = []
    for compile_ in (False, True):
        torch.manual_seed(0)
        model = BertForSequenceClassification(no_dropout(tiny_config))
        fit(model, feats, lambda f: collate(f, 0), TrainArgs(**{**vars(args), "compile": compile_}),
            torch.device("cuda"), "compile")
        states.append({k: v.cpu() for k, v in model.state_dict().items()})
    assert close(states[0], states[1], atol=1e-4)
