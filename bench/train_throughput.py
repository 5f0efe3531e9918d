"""Training throughput of the loop under its speed settings (precision, compile, length grouping, accumulation).

Times ``pipeline.train.loop.fit`` on a random-init BERT with random variable-length sequences and prints
examples/s and the fraction of padded tokens per setting. Not a test: numbers depend on the machine.

    PYTHONPATH=src python bench/train_throughput.py                     # BERT-base shape on a GPU
    PYTHONPATH=src python bench/train_throughput.py --small --examples 512   # quick CPU check
"""

import argparse
import time

import torch
from transformers import BertConfig, BertForSequenceClassification

from pipeline.config.args import TrainArgs
from pipeline.core.runtime import setup
from pipeline.data.features import collate
from pipeline.train.loop import fit
from pipeline.train.batches import epoch_order

SETTINGS = {
    "fp32": {},
    "fp32+group": {"group_by_length": True},
    "bf16+group": {"precision": "bf16", "group_by_length": True},
    "bf16+group+compile": {"precision": "bf16", "group_by_length": True, "compile": True},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--small", action="store_true", help="a 2-layer width-128 model instead of BERT-base")
    p.add_argument("--examples", type=int, default=4096)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--settings", nargs="*", default=list(SETTINGS))
    a = p.parse_args()
    device = setup(0)

    size = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512) if a.small else {}
    config = BertConfig(vocab_size=30522, max_position_embeddings=512, **size)
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(16, a.max_length + 1, (a.examples,), generator=g).tolist()
    feats = [{"input_ids": torch.randint(1000, 30000, (n,), generator=g).tolist(), "attention_mask": [1] * n,
              "labels": i % 2} for i, n in enumerate(lengths)]
    for name in a.settings:
        if device.type != "cuda" and ("bf16" in name or "compile" in name):
            continue  # GPU settings
        args = TrainArgs(epochs=1, batch_size=a.batch_size, lr=1e-4, **SETTINGS[name])
        order = epoch_order(lengths, args, 0)
        chunks = [order[s : s + a.batch_size] for s in range(0, len(order), a.batch_size)]
        padded = sum(max(lengths[i] for i in c) * len(c) for c in chunks)
        model = BertForSequenceClassification(config)
        fit(model, feats[: 4 * a.batch_size], lambda f: collate(f, 0), args, device, "warm-up")  # compile, allocator
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fit(model, feats, lambda f: collate(f, 0), args, device, name)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        print(f"{name:22s} {a.examples / seconds:9.1f} examples/s   padding {1 - sum(lengths) / padded:.1%}  ({device})")


if __name__ == "__main__":
    main()
