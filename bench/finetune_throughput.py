"""Fine-tune throughput: the project's training loop against a default Hugging Face ``Trainer``.

Same model (a randomly initialised BERT-base-sized sequence classifier), same synthetic full-length token
batches, same number of steps. Each implementation runs ``--warmup + --steps`` optimizer steps; only the
last ``--steps`` are timed (from the end of the last warm-up step to the end of the last step, the GPU
synchronised at both ends), so start-up and allocation are excluded for both alike.

Prints one JSON line per implementation:
``{bench, impl, device, dtype, batch, seq, steps, seq_per_s, tokens_per_s, flops_per_token, mfu, ...}``
MFU is ``tokens_per_s * flops_per_token / peak`` with the FLOP count of
:func:`common.train_flops_per_token` (``6 * N_linear + 12 * L * d * T``) and the dense bf16 peak of the
GPU (:data:`common.PEAK_BF16_FLOPS`); null on a CPU or an unknown GPU.

    python bench/finetune_throughput.py                 # BERT-base, seq 128, batch 32 (GPU)
    python bench/finetune_throughput.py --small         # a tiny config, a CPU smoke test
    python bench/finetune_throughput.py --train-arg compile=true   # TrainArgs fields, when they exist

``impl``: ``pipeline`` (``pipeline.train.loop.fit``; bf16 via TrainArgs when it has a bf16 option, else under
``torch.autocast``), ``hf_trainer_default`` (``TrainingArguments`` defaults: fp32 on every device), and
with ``--trainer-bf16`` also ``hf_trainer_bf16`` (defaults plus ``bf16=True``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import tempfile
import time

import torch
import yaml
from transformers import BertConfig, BertForSequenceClassification

from common import device_name, emit, peak_bf16_flops, sync, train_flops_per_token

BERT_BASE = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072)
SMALL = dict(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
# TrainArgs options that switch the project's loop to bf16, by the names they may take.
BF16_OPTIONS = ({"bf16": True}, {"precision": "bf16"}, {"dtype": "bf16"}, {"mixed_precision": "bf16"})


def synthetic_features(n: int, seq: int, vocab: int, seed: int = 0) -> list[dict[str, list[int]]]:
    """``n`` full-length random token sequences with binary labels (no padding: every token counts)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000 if vocab > 2000 else 5, vocab, (n, seq), generator=g)
    labels = torch.randint(0, 2, (n,), generator=g)
    return [{"input_ids": ids[i].tolist(), "attention_mask": [1] * seq, "labels": int(labels[i])} for i in range(n)]


def build_model(config: dict, seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    return BertForSequenceClassification(BertConfig(**config, num_labels=2))


def train_args(overrides: dict, batch: int, bf16: bool):
    """The project's TrainArgs with ``overrides`` applied; fields it lacks are dropped with a note.

    Returns:
        ``(args, used)``: the TrainArgs and the options actually set (for the JSON line); ``used["bf16"]``
        says whether TrainArgs itself switched to bf16 (else the caller uses autocast).
    """
    from pipeline.config.args import TrainArgs

    fields = {f.name for f in dataclasses.fields(TrainArgs)}
    wanted = {"epochs": 1.0, "batch_size": batch, "lr": 5e-5, "warmup_ratio": 0.0, **overrides}
    used = {k: v for k, v in wanted.items() if k in fields}
    for key in sorted(set(wanted) - fields):
        print(f"note: TrainArgs has no field '{key}' (ignored)", file=sys.stderr)
    native_bf16 = False
    if bf16:
        for option in BF16_OPTIONS:
            if set(option) <= fields and not set(option) & set(overrides):
                used |= option
                native_bf16 = True
                break
    return TrainArgs(**used), {**used, "native_bf16": native_bf16}


def time_pipeline(config: dict, feats: list, batch: int, warmup: int, steps: int, device: torch.device,
                  bf16: bool, overrides: dict) -> dict:
    """Steady-state throughput of ``pipeline.train.loop.fit`` over ``steps`` optimizer steps after ``warmup``."""
    from pipeline.data.features import collate
    from pipeline.train.loop import fit

    model = build_model(config)
    args, used = train_args(overrides, batch, bf16)
    seen = {"sequences": 0}

    def counting_collate(chunk):
        seen["sequences"] += len(chunk)  # counts micro-batches too, should fit accumulate gradients
        return collate(chunk, 0)

    marks: list[tuple[float, int]] = []

    def after_step(_model):
        sync(device)
        marks.append((time.perf_counter(), seen["sequences"]))

    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if bf16 and not used["native_bf16"]
                else contextlib.nullcontext())
    with autocast:
        fit(model, feats, counting_collate, args, device, "bench", after_step=after_step)
    if len(marks) < warmup + steps:
        raise SystemExit(f"fit ran {len(marks)} optimizer steps, expected {warmup + steps}")
    (t0, s0), (t1, s1) = marks[warmup - 1], marks[warmup + steps - 1]
    return {"seconds": t1 - t0, "sequences": s1 - s0, "train_args": {k: v for k, v in used.items()}}


def time_trainer(config: dict, feats: list, batch: int, warmup: int, steps: int, device: torch.device,
                 bf16: bool) -> dict:
    """Steady-state throughput of ``transformers.Trainer`` with default ``TrainingArguments``."""
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class Marks(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []

        def on_step_end(self, args, state, control, **kwargs):
            sync(device)
            self.times.append(time.perf_counter())

    class Data(torch.utils.data.Dataset):
        def __len__(self):
            return len(feats)

        def __getitem__(self, i):
            f = feats[i]
            return {"input_ids": torch.tensor(f["input_ids"]), "attention_mask": torch.tensor(f["attention_mask"]),
                    "labels": torch.tensor(f["labels"])}

    marks = Marks()
    with tempfile.TemporaryDirectory() as out:
        # Only what the comparison needs is set: run length, batch size, and no saving/reporting side work.
        extra = {"bf16": True} if bf16 else {}
        targs = TrainingArguments(output_dir=out, max_steps=warmup + steps, per_device_train_batch_size=batch,
                                  save_strategy="no", report_to="none", disable_tqdm=True,
                                  use_cpu=device.type == "cpu", **extra)
        trainer = Trainer(model=build_model(config), args=targs, train_dataset=Data(), callbacks=[marks])
        with contextlib.redirect_stdout(sys.stderr):  # Trainer prints its own log dicts: stdout is JSON only
            trainer.train()
    t = marks.times
    return {"seconds": t[warmup + steps - 1] - t[warmup - 1],
            "sequences": steps * batch * targs.gradient_accumulation_steps}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", action="store_true", help="tiny config, seq 32, batch 4, 3 steps (CPU smoke test)")
    p.add_argument("--batch", type=int, default=None, help="sequences per step (default 32; 4 with --small)")
    p.add_argument("--seq", type=int, default=None, help="tokens per sequence (default 128; 32 with --small)")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 50; 3 with --small)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 10; 1 with --small)")
    p.add_argument("--impl", choices=["pipeline", "trainer", "both"], default="both")
    p.add_argument("--dtype", choices=["bf16", "fp32"], default=None, help="default: bf16 on CUDA, fp32 on CPU")
    p.add_argument("--trainer-bf16", action="store_true", help="also time the Trainer with bf16=True")
    p.add_argument("--train-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="a TrainArgs field for the project's loop (YAML value), e.g. compile=true; repeatable")
    args = p.parse_args(argv)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = SMALL if args.small else BERT_BASE
    batch = args.batch or (4 if args.small else 32)
    seq = args.seq or (32 if args.small else 128)
    steps = args.steps or (3 if args.small else 50)
    warmup = args.warmup or (1 if args.small else 10)
    if warmup < 1 or steps < 1:
        p.error("--warmup and --steps must be >= 1 (the end of the last warm-up step starts the clock)")
    dtype = args.dtype or ("bf16" if device.type == "cuda" else "fp32")
    overrides = {}
    for item in args.train_arg:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    feats = synthetic_features(batch * (warmup + steps), seq, config["vocab_size"])

    flops = train_flops_per_token(build_model(config), seq)
    peak = peak_bf16_flops(device)
    runs = []
    if args.impl in ("pipeline", "both"):
        runs.append(("pipeline", dtype, lambda: time_pipeline(config, feats, batch, warmup, steps, device,
                                                              dtype == "bf16", overrides)))
    if args.impl in ("trainer", "both"):
        runs.append(("hf_trainer_default", "fp32", lambda: time_trainer(config, feats, batch, warmup, steps,
                                                                        device, False)))
        if args.trainer_bf16:
            runs.append(("hf_trainer_bf16", "bf16", lambda: time_trainer(config, feats, batch, warmup, steps,
                                                                         device, True)))
    for impl, run_dtype, run in runs:
        result = run()
        seq_per_s = result["sequences"] / result["seconds"]
        tokens_per_s = seq_per_s * seq
        emit({"bench": "finetune_throughput", "impl": impl, "device": device_name(device), "dtype": run_dtype,
              "batch": batch, "seq": seq, "steps": steps, "model": "small" if args.small else "bert-base",
              "seq_per_s": round(seq_per_s, 3), "tokens_per_s": round(tokens_per_s, 1),
              "flops_per_token": flops,
              "mfu": None if peak is None else round(tokens_per_s * flops / peak, 4),
              **({"train_args": result["train_args"]} if "train_args" in result else {})})
    return 0


if __name__ == "__main__":
    sys.exit(main())
