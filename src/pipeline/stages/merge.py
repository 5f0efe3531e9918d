"""The merge stage's work (``stages/merge.py``): the pretraining runs merged in weight space, with the
held-out perplexity of each input and of the merged model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.config import loader
from pipeline.core.files import parents, write_json
from pipeline.core.runtime import setup
from pipeline.data.features import encode_text
from pipeline.data.io import read_split
from pipeline.data.tokenizer import load_tokenizer
from pipeline.merge import METHODS, merge_states
from pipeline.artifacts import load_model
from pipeline.models.store import write_artifact
from pipeline.pretrain.mlm import MlmParams, check_mlm, perplexity


def merge_stage(method: str, weights: list[float], cfg: Any, mlm: MlmParams, model_dirs: list[Path], base_dir: Path,
                corpus: Path, out: Path, metrics: Path) -> None:
    """Merge the MLM artifacts ``model_dirs`` with the registered ``method`` (its params ``cfg``) and write ``out``.

    Args:
        weights: ``merge.weights``, one per model (resolved by :func:`~pipeline.merge.merge_states`).
        base_dir: the base artifact the runs started from (task arithmetic subtracts it; its tokenizer is kept).
        corpus: the corpus data directory; perplexity is measured on its validation split at ``mlm.max_length``.
        metrics: JSON file of the merged model's perplexity and each input's (keyed by its path).

    Writes: the artifact ``out`` (the first model's container holding the merged weights), then ``metrics``.

    Raises:
        PipelineError: an unknown method, models that do not share shapes, bad weights, or an MLM setting the
        base model cannot run.
    """
    device = setup(0)
    models = [load_model(p, "mlm")[0] for p in model_dirs]
    base, _ = load_model(base_dir, "mlm")
    tokenizer = load_tokenizer(base_dir)
    check_mlm(mlm, base, tokenizer, str(base_dir))  # perplexity runs at mlm.max_length
    merged_state = merge_states([m.state_dict() for m in models], [str(p) for p in model_dirs],
                                METHODS.get(method), cfg, weights, base.state_dict())
    feats = encode_text(read_split(corpus, "validation", "text"), tokenizer, mlm.max_length)
    ppl = {str(p): perplexity(m, feats, tokenizer, mlm.probability, device) for p, m in zip(model_dirs, models)}
    merged = models[0]  # measured above; now reused as the container of the merged weights
    merged.load_state_dict(merged_state)
    result = {"perplexity": perplexity(merged, feats, tokenizer, mlm.probability, device), "inputs": ppl}
    meta = {"stage": "merge", "head": "mlm", "format": "dense", "method": method,
            "parents": parents(base_dir, *model_dirs), "results": result,
            "params": loader.as_dict({"weights": weights, method: cfg})}
    write_artifact(out, merged, base_dir, meta)
    write_json(metrics, result)
