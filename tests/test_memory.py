"""Memory footprint of a forward pass (pipeline.evaluation.memory): CPU RSS with each batch size in its own fresh
process, CUDA peak allocated memory in this process."""

import resource
import subprocess
import sys

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from pipeline.core.errors import PipelineError
from pipeline.core.files import atomic_dir
from pipeline.evaluation.memory import device_memory, memory_facts
from pipeline.models.store import WEIGHTS, save_model

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self (Linux)")


def _artifact(root, name, tokenizer, **sizes):
    config = BertConfig(vocab_size=64, max_position_embeddings=64, pad_token_id=0, **sizes)
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).eval()
    tokenizer.save_pretrained(root / "tok")
    with atomic_dir(root / name) as tmp:
        save_model(tmp, model, root / "tok", {"stage": name, "head": "classification", "format": "dense"})
    return root / name


def _batch(size: int, length: int = 64) -> dict[str, torch.Tensor]:
    ids = torch.full((size, length), 5, dtype=torch.long)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


@linux
@pytest.mark.slow  # four fresh measuring processes
def test_larger_model_and_batch_need_more_memory(tmp_path, tokenizer):
    small = _artifact(tmp_path, "small", tokenizer, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=64)
    big = _artifact(tmp_path, "big", tokenizer, hidden_size=512, num_hidden_layers=4, num_attention_heads=8,
                    intermediate_size=2048)  # ~13M parameters, ~50 MB of float32 weights
    batches = {"bs1": _batch(1), "large": _batch(32)}
    s, b = (memory_facts(path, "classification", batches, threads=1) for path in (small, big))
    keys = {f"cpu_{label}_{kind}_mb" for label in ("bs1", "large") for kind in ("peak_rss", "forward_rss")}
    assert set(s) == set(b) == keys
    assert all(v > 0 for v in (*b.values(), s["cpu_bs1_peak_rss_mb"], s["cpu_large_peak_rss_mb"]))
    assert all(v >= 0 for v in s.values())
    # the big model's weights are resident: its peak exceeds the small one's by most of their size
    weights_mb = (big / WEIGHTS).stat().st_size / 1e6
    for label in ("bs1", "large"):
        assert b[f"cpu_{label}_peak_rss_mb"] - s[f"cpu_{label}_peak_rss_mb"] > 0.8 * weights_mb
        assert b[f"cpu_{label}_forward_rss_mb"] > s[f"cpu_{label}_forward_rss_mb"]
        # the increase is part of the peak (the rest: interpreter, torch, the weights)
        assert b[f"cpu_{label}_peak_rss_mb"] > b[f"cpu_{label}_forward_rss_mb"] + weights_mb
    # 32 sequences need more than one: activations of (32, 64, 2048) floats alone are 16.8 MB
    assert b["cpu_large_forward_rss_mb"] - b["cpu_bs1_forward_rss_mb"] > 16
    assert b["cpu_large_peak_rss_mb"] > b["cpu_bs1_peak_rss_mb"]
    assert s["cpu_large_forward_rss_mb"] >= s["cpu_bs1_forward_rss_mb"]


@linux
def test_getrusage_of_a_child_carries_its_parents_size():
    """Why the measuring process reads /proc/self/status: ru_maxrss of a child reports at least the resident size
    of the parent that started it (here a parent holding 200 MB; the child itself needs a few MB)."""
    ballast = torch.ones(50_000_000)  # 200 MB, touched
    code = ("import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
            "[l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
    maxrss_kb, hwm_kb = map(int, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                check=True).stdout.split())
    assert maxrss_kb > 200_000 > 50_000 > hwm_kb
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss > 200_000
    del ballast


@linux
def test_a_failed_measurement_names_the_culprit(tmp_path):
    with pytest.raises(PipelineError, match=f"memory measurement failed .*{tmp_path / 'nope'}"):
        memory_facts(tmp_path / "nope", "classification", {"bs1": _batch(1)}, threads=1)


def test_no_memory_measured_in_process_on_the_cpu():
    model = BertForSequenceClassification(BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1,
                                                     num_attention_heads=4, intermediate_size=64))
    assert device_memory(model, _batch(2), torch.device("cpu")) == {}  # the CPU's RSS needs a fresh process
    assert memory_facts("unused", "classification", {}, threads=1) == {}  # no batches: no process started


@pytest.mark.gpu
def test_cuda_max_allocated_in_this_process():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    sizes = dict(vocab_size=64, max_position_embeddings=64, num_attention_heads=8, num_hidden_layers=4)
    torch.manual_seed(0)
    small = BertForSequenceClassification(BertConfig(hidden_size=64, intermediate_size=128, **sizes)).eval()
    big = BertForSequenceClassification(BertConfig(hidden_size=512, intermediate_size=2048, **sizes)).eval()
    weights_mb = sum(p.numel() * p.element_size() for p in big.parameters()) / 1e6
    big_mb = device_memory(big, _batch(32), torch.device("cuda"))["cuda_large_max_allocated_mb"]
    assert next(big.parameters()).device.type == "cuda"  # moved there; the stage's timing reuses it
    big.to("cpu")  # the stage measures a variant alone on the device: so does this test
    small_mb = device_memory(small, _batch(32), torch.device("cuda"))["cuda_large_max_allocated_mb"]
    # the weights are held on the device (float32, autocast keeps them), plus the pass's activations
    assert big_mb > weights_mb > 0
    assert small_mb < big_mb - 0.8 * weights_mb  # measured without the big model's weights
