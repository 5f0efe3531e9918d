"""Resumable checkpoints hold no pickle: SafeTensors + strict JSON, written atomically; a planted pickle is never
loaded and a damaged checkpoint is a one-line error that says to delete it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import BertForSequenceClassification

from pipeline.config.args import TrainArgs
from pipeline.core.errors import PipelineError
from pipeline.core.files import file_hash
from pipeline.data.features import collate
from pipeline.train import checkpoint
from pipeline.train.loop import fit
from pipeline.train.run_files import RunFiles
from test_train import parity_feats
from test_train_loop import Crash, crash_after

CPU = torch.device("cpu")
ARGS = TrainArgs(epochs=1, batch_size=8, checkpoint_every=2)  # 64 examples: 8 steps, saves at 2, 4, 6


def run(config, files=None, hook=None, args=ARGS):
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    fit(model, parity_feats(64), lambda f: collate(f, 0), args, CPU, "t", after_step=hook, files=files)
    return model.state_dict()


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def crashed(tiny_config, tmp_path):
    """A run killed after step 3: ``<out>.ckpt`` holds the checkpoint of step 2."""
    files = RunFiles.beside(tmp_path / "model")
    with pytest.raises(Crash):
        run(tiny_config, files, crash_after(3))
    return files


def index_of(ckpt):
    return json.loads((ckpt / "state.json").read_text())


def test_checkpoint_is_one_safetensors_file_and_its_strict_json_index(crashed):
    ckpt = crashed.checkpoint
    index = index_of(ckpt)
    assert sorted(p.name for p in ckpt.iterdir()) == sorted(["state.json", index["tensors"]])
    assert index["format"] == checkpoint.FORMAT and index["state"]["step"] == 2
    tensors = load_file(ckpt / index["tensors"])
    assert {"model/classifier.weight", "rng/torch", "rng/python", "rng/numpy"} <= tensors.keys()
    assert tensors["rng/torch"].dtype == torch.uint8 and tensors["rng/torch"].shape[0] == 1  # one row per process
    assert any(k.startswith("optimizer/state/0/") for k in tensors)
    group = index["state"]["optimizer"]["param_groups"][0]
    assert group["betas"] == {"$tuple": [0.9, 0.999]} and isinstance(group["params"], list)


def test_resume_equals_an_uninterrupted_run(tiny_config, crashed, capsys):
    resumed = run(tiny_config, crashed)
    assert "resumed from" in capsys.readouterr().out
    assert same(resumed, run(tiny_config))


class Planted:
    """A pickle payload: unpickling it creates ``marker`` (what ``torch.load(weights_only=False)`` would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_a_planted_pickle_checkpoint_is_never_loaded(tiny_config, tmp_path, capsys):
    probe = tmp_path / "probe.pt"
    torch.save({"fingerprint": Planted(tmp_path / "probe-ran")}, probe)
    torch.load(probe, weights_only=False)  # the payload is live: loading the old way runs it
    assert (tmp_path / "probe-ran").exists()

    files = RunFiles.beside(tmp_path / "model")
    files.checkpoint.mkdir()
    marker = tmp_path / "payload-ran"
    torch.save({"fingerprint": Planted(marker), "step": 5}, files.checkpoint / "state.pt")
    state = run(tiny_config, files)
    assert not marker.exists()
    assert "pickle checkpoint: never loaded" in capsys.readouterr().out
    assert same(state, run(tiny_config))  # started over


def _edit_index(ckpt, change):
    index = index_of(ckpt)
    change(index)
    (ckpt / "state.json").write_text(json.dumps(index))


def _truncate(ckpt):
    text = (ckpt / "state.json").read_text()
    (ckpt / "state.json").write_text(text[: len(text) // 2])


def _flip_a_byte(ckpt):
    path = ckpt / index_of(ckpt)["tensors"]
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))


def _garbage_with_matching_hash(ckpt):
    path = ckpt / index_of(ckpt)["tensors"]
    path.write_bytes(b"\xff" * 64)
    _edit_index(ckpt, lambda i: i.update(sha256=file_hash(path)))


def _edit_tensors(ckpt, change):
    """Change the tensor file and give the index its new hash (a hand-made checkpoint, not a damaged one)."""
    path = ckpt / index_of(ckpt)["tensors"]
    tensors = load_file(path)
    change(tensors)
    save_file(tensors, path)
    _edit_index(ckpt, lambda i: i.update(sha256=file_hash(path)))


DAMAGE = {
    "truncated index": _truncate,
    "NaN in index": lambda c: (c / "state.json").write_text(
        (c / "state.json").read_text().replace('"step":2', '"step":NaN')),
    "path outside": lambda c: _edit_index(c, lambda i: i.update(tensors="../../etc/passwd")),
    "tensor file missing": lambda c: (c / index_of(c)["tensors"]).unlink(),
    "altered tensor file": _flip_a_byte,
    "not safetensors": _garbage_with_matching_hash,
    "unknown tensor": lambda c: _edit_index(c, lambda i: i["state"]["model"].update(
        {"classifier.bias": {"$tensor": "model/nothing"}})),
    "wrong shape": lambda c: _edit_tensors(c, lambda t: t.update({"model/classifier.weight": torch.zeros(3, 3)})),
    "python rng out of range": lambda c: _edit_tensors(c, lambda t: t["rng/python"][0].fill_(-1)),
    "torch rng garbage": lambda c: _edit_tensors(c, lambda t: t["rng/torch"].fill_(7)),
    "bad progress": lambda c: _edit_index(c, lambda i: i["state"].update(step=10**9)),
    "bad rng": lambda c: _edit_index(c, lambda i: i["state"]["rng"].update(torch=[1, 2])),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_damaged_checkpoint_is_a_one_line_error(tiny_config, crashed, damage):
    DAMAGE[damage](crashed.checkpoint)
    with pytest.raises(PipelineError) as err:
        run(tiny_config, crashed)
    message = str(err.value)
    assert "\n" not in message and f"delete {crashed.checkpoint} to start over" in message


@pytest.mark.parametrize("failing", ["tensors", "index"])
def test_a_kill_while_saving_leaves_the_previous_checkpoint(tiny_config, tmp_path, monkeypatch, failing):
    files = RunFiles.beside(tmp_path / "model")
    real = {"tensors": checkpoint.save_file, "index": checkpoint.atomic_write_text}[failing]  # what a kill interrupts
    calls = []

    def dies_on_second_save(*args, **kwargs):
        calls.append(1)
        if len(calls) < 2:
            return real(*args, **kwargs)
        if failing == "tensors":  # the save at step 4 dies with half of its tensor file written
            real(*args, **kwargs)
            Path(args[1]).write_bytes(Path(args[1]).read_bytes()[:100])
        raise Crash("killed while saving")  # "index": the new tensor file is complete, state.json not replaced

    name = {"tensors": "save_file", "index": "atomic_write_text"}[failing]
    monkeypatch.setattr(checkpoint, name, dies_on_second_save)
    with pytest.raises(Crash):
        run(tiny_config, files)
    monkeypatch.undo()
    assert index_of(files.checkpoint)["state"]["step"] == 2
    assert same(run(tiny_config, files), run(tiny_config))
    index = index_of(files.checkpoint)  # the resumed run saved at 4 and 6: leftovers of the killed save are gone
    assert sorted(p.name for p in files.checkpoint.iterdir()) == sorted(["state.json", index["tensors"]])


class CountingHook:
    """A stateful hook with tensors, tuples and integer keys in its state (all go through the checkpoint)."""

    def __init__(self):
        self.steps, self.norms = 0, {}

    def __call__(self, model):
        self.steps += 1
        self.norms[self.steps] = (model.classifier.weight.norm().detach().clone(), float(self.steps))

    def state_dict(self):
        return {"steps": self.steps, "norms": dict(self.norms)}

    def load_state_dict(self, state):
        self.steps, self.norms = state["steps"], dict(state["norms"])


def test_hook_state_round_trips_through_a_resume(tiny_config, tmp_path):
    ref_hook = CountingHook()
    ref = run(tiny_config, hook=ref_hook)
    files = RunFiles.beside(tmp_path / "model")

    class Dying(CountingHook):
        def __call__(self, model):
            super().__call__(model)
            if self.steps == 5:
                raise Crash("killed")

    with pytest.raises(Crash):
        run(tiny_config, files, Dying())
    hook = CountingHook()
    assert same(run(tiny_config, files, hook), ref)
    assert hook.steps == 8 and hook.norms.keys() == ref_hook.norms.keys()
    assert all(torch.equal(hook.norms[k][0], ref_hook.norms[k][0]) and hook.norms[k][1] == ref_hook.norms[k][1]
               for k in hook.norms)


def test_encode_refuses_what_json_and_safetensors_cannot_hold_exactly():
    tensors = {}
    tree = checkpoint.encode({"a": (1, 2.5, None), "b": {3: torch.ones(2)}}, "", tensors)
    assert checkpoint.decode(json.loads(json.dumps(tree)), tensors) == {"a": (1, 2.5, None), "b": {3: tensors["b/3"]}}
    with pytest.raises(TypeError, match="ndarray"):
        checkpoint.encode({"x": __import__("numpy").zeros(2)}, "", {})
    with pytest.raises(TypeError, match="keys"):
        checkpoint.encode({"x": 1, 2: 3}, "", {})
