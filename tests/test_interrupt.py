"""Killed stages: no partial artifact DVC could cache, no leftover temp dir, and a rerun completes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from transformers import BertForMaskedLM

from conftest import WORDS
from tools.code_deps import ROOT
from pipeline.core.files import atomic_dir, clean_stale_tmp
from pipeline.models.store import save_model

ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}

# A child that enters atomic_dir, writes a partial file, reports its temp dir and waits to be killed.
WRITER = """
import sys, time
from pipeline.core.files import atomic_dir
with atomic_dir(sys.argv[1]) as tmp:
    (tmp / "model.safetensors").write_bytes(b"partial")
    print(tmp, flush=True)
    time.sleep(60)
"""


def leftovers(parent: Path, name: str) -> list[Path]:
    return sorted(parent.glob(f".{name}.tmp-*"))


def start_writer(out: Path) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE, text=True, env=ENV)
    tmp = Path(proc.stdout.readline().strip())
    assert tmp.is_dir() and (tmp / "model.safetensors").is_file()
    return proc, tmp


def test_sigterm_inside_atomic_dir_removes_the_temp_dir(tmp_path):
    out = tmp_path / "models" / "art"
    proc, tmp = start_writer(out)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert not out.exists() and not tmp.exists() and leftovers(out.parent, "art") == []


def test_sigkill_leftover_is_removed_by_the_next_run(tmp_path):
    out = tmp_path / "models" / "art"
    proc, tmp = start_writer(out)
    proc.kill()
    proc.wait(timeout=30)
    assert not out.exists() and tmp.is_dir()  # SIGKILL cannot clean up; the output was never committed
    with atomic_dir(out) as new_tmp:
        assert not tmp.exists()  # the stale temp dir of the dead writer is gone before writing starts
        (new_tmp / "x").write_text("ok")
    assert (out / "x").read_text() == "ok" and leftovers(out.parent, "art") == []


def test_temp_dir_of_a_live_writer_is_kept(tmp_path):
    out = tmp_path / "art"
    live = tmp_path / f".art.tmp-{os.getppid()}"  # the parent process is alive
    live.mkdir()
    dead = tmp_path / ".art.tmp-999999999"  # beyond pid_max: never alive
    dead.mkdir()
    assert clean_stale_tmp(out) == [dead]
    assert live.is_dir()


@pytest.fixture
def finetune_inputs(tmp_path, tiny_config, tokenizer):
    """A tiny MLM artifact, a tiny classification data set and params for a long fine-tuning run."""
    tok = tmp_path / "tok"
    tokenizer.save_pretrained(tok)
    torch.manual_seed(0)
    with atomic_dir(tmp_path / "models" / "merged") as out:
        save_model(out, BertForMaskedLM(tiny_config), tok, {"stage": "merge", "head": "mlm", "format": "dense"})
    data = tmp_path / "data" / "cls"
    data.mkdir(parents=True)
    rng = torch.Generator().manual_seed(0)
    for split, n in (("train", 256), ("validation", 16)):
        rows = []
        for i in range(n):
            words = [WORDS[j] for j in torch.randint(len(WORDS), (6,), generator=rng).tolist()]
            rows.append({"sentence": " ".join(words), "label": int("good" in words), "idx": i})
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["finetune"]["cls"].update(epochs=500, batch_size=8)  # far longer than the test waits
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


FINETUNE = [sys.executable, str(ROOT / "stages" / "finetune.py"), "--task", "cls", "models/merged", "data/cls",
            "models/cls/finetune", "--live", "metrics/train/finetune/cls"]


def wait_for_training(proc: subprocess.Popen) -> None:
    """Block until the stage's progress bar appears on stderr, then let it train a moment."""
    seen = ""
    while "finetune cls" not in seen:
        char = proc.stderr.read(1)
        assert char, f"stage ended before training: {seen[-2000:]}"
        seen += char
    time.sleep(1.0)
    assert proc.poll() is None


def set_epochs(cwd: Path, epochs: int) -> None:
    params = yaml.safe_load((cwd / "params.yaml").read_text())
    params["finetune"]["cls"]["epochs"] = epochs
    (cwd / "params.yaml").write_text(yaml.safe_dump(params))


def finetune_to_the_end(cwd: Path) -> None:
    result = subprocess.run(FINETUNE, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def files_of(*dirs: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for d in dirs for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.mark.slow  # the finetune stage as a process, killed, then run again
def test_killed_finetune_keeps_the_previous_outputs_and_rerun_completes(finetune_inputs):
    cwd = finetune_inputs
    cls, curves = cwd / "models" / "cls", cwd / "metrics" / "train" / "finetune" / "cls"
    set_epochs(cwd, 1)
    finetune_to_the_end(cwd)
    previous = files_of(cls / "finetune", curves)
    assert any(name.endswith("eval/accuracy.tsv") for name in previous)

    set_epochs(cwd, 500)  # far longer than the test waits
    for sig in (signal.SIGTERM, signal.SIGKILL):
        proc = subprocess.Popen(FINETUNE, cwd=cwd, env=ENV, stderr=subprocess.PIPE, text=True)
        wait_for_training(proc)
        proc.send_signal(sig)
        assert proc.wait(timeout=60) != 0, sig
        proc.stderr.close()
        # no partial artifact or truncated curves: the previous run's files are untouched
        assert files_of(cls / "finetune", curves) == previous, sig
        assert leftovers(cls, "finetune") == [], sig

    set_epochs(cwd, 2)
    finetune_to_the_end(cwd)
    meta = json.loads((cls / "finetune" / "pipeline.json").read_text())
    assert meta["stage"] == "finetune" and len(meta["history"]) == 2
    assert (cls / "finetune" / "model.safetensors").is_file()
    assert leftovers(cls, "finetune") == [] and leftovers(curves.parent, "cls") == []  # killed runs' too
    steps = (curves / "plots/metrics/eval/accuracy.tsv").read_text().splitlines()
    assert len(steps) == 1 + 2  # complete curves of the new run
