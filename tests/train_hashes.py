"""Parameter hashes of tiny training runs under several loop settings (a before/after check for loop changes).

Not a test module: run it before and after a change to :mod:`pipeline.train.loop` and compare the outputs
(``sha256`` of every parameter, of the history and of every curve file, per setting)::

    export OMP_NUM_THREADS=1 PYTHONPATH=src
    python tests/train_hashes.py before.json
    python -m accelerate.commands.launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no \
        --dynamo_backend no tests/train_hashes.py before-ddp.json --ddp      # 2 gloo processes; rank 0 writes
    ... change the loop, write after.json / after-ddp.json the same way ...
    cmp before.json after.json && cmp before-ddp.json after-ddp.json
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import torch
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification, BertTokenizerFast

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import WORDS  # noqa: E402
from test_train import parity_feats  # noqa: E402

from pipeline.config.args import LaunchParams, TrainArgs  # noqa: E402
from pipeline.core.runtime import is_main, setup, world  # noqa: E402
from pipeline.data.features import MlmCollator, collate, encode_text  # noqa: E402
from pipeline.train.loop import fit  # noqa: E402
from pipeline.train.run_files import RunFiles  # noqa: E402

CONFIG = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
              max_position_embeddings=64, pad_token_id=0)


class Crash(Exception):
    pass


def crash_after(step):
    count = [0]

    def hook(model):
        count[0] += 1
        if count[0] == step:
            raise Crash(step)

    return hook


def varied(n=40):
    g = torch.Generator().manual_seed(100)
    feats = parity_feats(n)
    for f in feats:
        keep = int(torch.randint(4, 13, (1,), generator=g))
        f["input_ids"], f["attention_mask"] = f["input_ids"][:keep], f["attention_mask"][:keep]
    return feats


def digest(model, history, live: Path | None) -> dict:
    out = {k: hashlib.sha256(v.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
           for k, v in model.state_dict().items()}
    out["history"] = hashlib.sha256(json.dumps(history, sort_keys=True).encode()).hexdigest()
    if live is not None:
        for p in sorted(live.rglob("*.tsv")):
            out[f"curve:{p.relative_to(live)}"] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run_cls(args, device, tmp: Path, name: str, crash: int | None = None, mlm_tok=None):
    torch.manual_seed(0)
    files = RunFiles.beside(tmp / name, tmp / f"{name}-live")
    if mlm_tok is not None:
        model = BertForMaskedLM(BertConfig(**{**CONFIG, "vocab_size": len(mlm_tok)}))
        rows = [{"text": " ".join(WORDS[(i + j) % len(WORDS)] for j in range(3 + i % 7))} for i in range(40)]
        feats, coll = encode_text(rows, mlm_tok, 32), MlmCollator(mlm_tok, 0.15, args.seed)
        on_epoch = None
    else:
        model = BertForSequenceClassification(BertConfig(**CONFIG))
        feats, coll = varied(), (lambda f: collate(f, 0))
        on_epoch = lambda e, m: {"x": float(e)}  # noqa: E731
    history = fit(model, feats, coll, args, device, name, after_step=crash_after(crash) if crash else None,
                  on_epoch=on_epoch, files=files)
    files.done()
    live = tmp / f"{name}-live"
    return digest(model, history, live if live.exists() else None)


def killed_and_resumed(args, device, tmp, name, crash, mlm_tok=None):
    try:
        run_cls(args, device, tmp, name, crash=crash, mlm_tok=mlm_tok)
    except Crash:
        pass
    return run_cls(args, device, tmp, name, mlm_tok=mlm_tok)


def tokenizer(tmp: Path):
    vocab = tmp / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, ".", ",", "?"]) + "\n")
    return BertTokenizerFast(vocab=str(vocab))


def settings() -> dict[str, tuple[TrainArgs, dict]]:
    base = dict(epochs=2, batch_size=8, lr=1e-3)
    return {
        "default": (TrainArgs(**base), {}),
        "accum2": (TrainArgs(**base, grad_accum_steps=2), {}),
        "group_by_length": (TrainArgs(**base, group_by_length=True), {}),
        "workers1": (TrainArgs(**base, num_workers=1), {}),
        "l1": (TrainArgs(**base, l1=1e-3), {}),
        "bf16": (TrainArgs(**base, precision="bf16"), {}),
        "epochs2.5_accum3": (TrainArgs(**{**base, "epochs": 2.5}, grad_accum_steps=3), {}),
        "resume_uninterrupted": (TrainArgs(**base, grad_accum_steps=2, group_by_length=True), {}),
        "resume": (TrainArgs(**base, grad_accum_steps=2, group_by_length=True, checkpoint_every=2), {"crash": 5}),
        "mlm": (TrainArgs(**base), {"mlm": True}),
        "mlm_workers_resume": (TrainArgs(**base, num_workers=1, checkpoint_every=2), {"mlm": True, "crash": 3}),
    }


def main(out: str, ddp: bool) -> None:
    device = setup(0, LaunchParams(command="accelerate launch", num_processes=2) if ddp else None)
    results = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tok = tokenizer(tmp)
        for name, (args, opts) in settings().items():
            if ddp and name in ("workers1", "bf16", "mlm_workers_resume"):
                continue  # keep the 2-process run short
            mlm_tok = tok if opts.get("mlm") else None
            if "crash" in opts:
                results[name] = killed_and_resumed(args, device, tmp, name, opts["crash"], mlm_tok)
            else:
                results[name] = run_cls(args, device, tmp, name, mlm_tok=mlm_tok)
    if is_main():
        Path(out).write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        for name, hashes in results.items():
            total = hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()[:16]
            print(f"{name:22s} {total}  ({len(hashes)} entries, world {world()[1]})")


if __name__ == "__main__":
    main(sys.argv[1], "--ddp" in sys.argv)
