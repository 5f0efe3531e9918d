"""The rehearsal's profiler (pipeline.core.profile): on, one JSON line per process with 0 < model_s <= wall_s;
off, nothing written. Each case runs in a fresh interpreter, since the switch is read at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# A tiny "stage": some work outside the model, then two timed forward passes of a small MLP (one nested block).
SCRIPT = """
import time, torch
from pipeline.core.profile import model_time, enabled
print(enabled())
time.sleep(0.2)
model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 2))
for _ in range(2):
    with model_time("cpu"):
        with model_time(torch.device("cpu")):
            model(torch.randn(32, 64)).sum().backward()
        time.sleep(0.05)
"""


def run(tmp_path: Path, profile: Path | None) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "DVC_STAGE": "finetune@cls"}
    env.pop("PIPELINE_PROFILE", None)
    if profile is not None:
        env["PIPELINE_PROFILE"] = str(profile)
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_profile_on_writes_one_line(tmp_path):
    out = tmp_path / "profile.jsonl"
    assert run(tmp_path, out) == "True"
    lines = out.read_text().splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert rec["stage"] == "finetune@cls"
    # two outer blocks of >= 0.05 s each (nested blocks counted once), and never more than the wall time,
    # which also holds the 0.2 s sleep outside the model
    assert 0.1 <= rec["model_s"] <= rec["wall_s"]
    assert rec["wall_s"] - rec["model_s"] >= 0.2
    run(tmp_path, out)  # a second process appends its own line
    assert len(out.read_text().splitlines()) == 2


def test_profile_off_writes_nothing(tmp_path):
    assert run(tmp_path, None) == "False"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["", None])
def test_off_is_one_shared_null_context(value, monkeypatch):
    from pipeline.core import profile

    monkeypatch.setattr(profile, "_PATH", value or None)
    assert profile.model_time("cpu") is profile.model_time("cpu")
    with profile.model_time("cpu"):
        pass
    assert profile._state["model_s"] == 0.0
