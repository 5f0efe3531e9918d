"""Equal artifacts are equal bytes, whichever process writes them (DVC caches and compares by content)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from tools.code_deps import ROOT

WRITE = """
import sys
from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification
from pipeline.models.compact import compact_model
from pipeline.models.store import save_model
from pipeline.quantize import quantize_model
torch.manual_seed(0)
model = BertForSequenceClassification(BertConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1,
                                                 num_attention_heads=2, intermediate_size=32))
with torch.no_grad():
    model.bert.encoder.layer[0].intermediate.dense.weight[:, ::2] = 0  # sparse enough for compact storage
meta = {"stage": "prune", "head": "classification", "format": "dense"}
tensors, compact_meta = compact_model(model, meta)
save_model(Path(sys.argv[1]), model, sys.argv[2], compact_meta, tensors=tensors)
tensors, scheme = quantize_model(model, "fp8")
save_model(Path(sys.argv[3]), model, sys.argv[2], {**meta, "format": "fp8", "quantization": scheme}, tensors=tensors)
"""


@pytest.mark.slow  # four writer processes
def test_the_same_artifact_written_by_several_processes_is_the_same_bytes(tmp_path, tokenizer):
    tokenizer.save_pretrained(tmp_path / "tok")
    digests = set()
    for run in range(4):  # safetensors once wrote its metadata keys in a random order per process
        out = [tmp_path / f"compact{run}", tmp_path / f"int8{run}"]
        for d in out:
            d.mkdir()
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
        proc = subprocess.run([sys.executable, "-c", WRITE, str(out[0]), str(tmp_path / "tok"), str(out[1])],
                              env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        digests.add(tuple(hashlib.sha256((d / "model.safetensors").read_bytes()).hexdigest() for d in out))
    assert len(digests) == 1
