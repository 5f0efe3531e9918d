"""Measuring a model artifact: task metrics, size, parameters, sparsity; the evaluate stage's output files."""

from __future__ import annotations

from pathlib import Path

import torch

from pipeline.artifacts import WEIGHT_FORMATS, WEIGHTS, atomic_dir, read_meta, read_tensors, write_json
from pipeline.sparse_storage import expand
from pipeline.weight_quant import dequantized_state
from pipeline.features import collate
from pipeline.params import TaskParams
from pipeline.tasks import logits, rows, train_features

# Quantization side tensors are bookkeeping, not parameters.
_NOT_PARAMS = ("weight_scale", "weight_zero_point")


def stored_parameters(path: str | Path) -> tuple[int, int]:
    """``(total, non_zero)`` element counts of the tensors stored in an artifact's weights file.

    Counting the file (not a live model) covers dense, pruned, compact and quantized artifacts alike
    (compact matrices are expanded first); scales and zero points of quantized weights are excluded,
    integer buffers such as ``position_ids`` too.
    """
    total = nonzero = 0
    meta = read_meta(path)
    tensors = expand(read_tensors(Path(path) / WEIGHTS))
    if meta["format"] in WEIGHT_FORMATS:  # packed int4 etc.: count the weights they stand for
        tensors = dequantized_state(tensors, meta["quantization"], str(Path(path) / WEIGHTS))
    for name, tensor in tensors.items():
        if name.endswith(_NOT_PARAMS) or tensor.dtype in (torch.int64, torch.int32):
            continue
        total += tensor.numel()
        nonzero += int(torch.count_nonzero(tensor))
    return total, nonzero


def latency_inputs(task: TaskParams, data_dir: str | Path, tokenizer, batch_size: int) -> dict[str, torch.Tensor]:
    """A fixed batch of real validation inputs of ``batch_size`` rows for timing."""
    split_rows = rows(task, data_dir, "validation")
    picked = (split_rows * batch_size)[:batch_size]
    feats = train_features(task, picked, tokenizer)[:batch_size]  # labels are dropped below
    batch = collate(feats, tokenizer.pad_token_id)
    return {k: v for k, v in batch.items() if k not in ("labels", "start_positions", "end_positions")}


def size_facts(path: str | Path) -> dict:
    """Size on disk of the weights file and the whole artifact directory, in bytes."""
    root = Path(path)
    return {
        "size_bytes": (root / WEIGHTS).stat().st_size,
        "artifact_bytes": sum(p.stat().st_size for p in root.rglob("*") if p.is_file()),
    }


@torch.inference_mode()
def logit_error(reference: torch.nn.Module, other: torch.nn.Module, data: list[dict[str, torch.Tensor]]) -> dict:
    """How far ``other``'s task logits are from ``reference``'s on the same batches.

    Per-token QA logits are compared on real (non-padding) tokens only.

    Returns:
        ``{"logit_max_abs_error", "logit_mean_abs_error", "compared_logits"}``.
    """
    diffs = []
    for batch in data:
        mask = batch["attention_mask"].bool()
        for ref, out in zip(logits(reference, batch), logits(other, batch)):
            d = (ref.float() - out.float()).abs()
            diffs.append(d[mask] if d.shape == mask.shape else d.flatten())
    d = torch.cat(diffs)
    return {"logit_max_abs_error": float(d.max()), "logit_mean_abs_error": float(d.mean()), "compared_logits": d.numel()}


def flat_diagnostics(diag: dict) -> dict[str, float]:
    """Scalars of a :func:`pipeline.diagnostics.classification_report` for the metrics file.

    ``auc``, ``macro_f1`` and ``precision_<c>``/``recall_<c>``/``f1_<c>`` per class (flat, so
    ``dvc metrics diff`` shows one row each); empty for a report without classes.
    """
    if not diag:
        return {}
    out = {"auc": diag["auc"], "macro_f1": diag["macro_f1"]}
    for key in ("precision", "recall", "f1"):
        out |= {f"{key}_{c}": v for c, v in enumerate(diag["per_class"][key])}
    return out


def write_plot_data(out: str | Path, layers: list[dict], diag: dict, labels=None, preds=None) -> None:
    """DVC plot data of one variant, written atomically into the directory ``out``.

    Files: ``layers.csv`` (layer, params, nonzero, sparsity, heads, ffn_neurons) always; for
    classification ``confusion.csv`` (one row per example: actual, predicted, for the ``confusion``
    template) and ``roc.csv`` (fpr, tpr[, class] for the ``simple`` template; binary: the class-1 curve).
    """
    with atomic_dir(out) as tmp:
        cols = ("layer", "params", "nonzero", "sparsity", "heads", "ffn_neurons")
        lines = [",".join(cols)] + [",".join(str(row[c]) for c in cols) for row in layers]
        (tmp / "layers.csv").write_text("\n".join(lines) + "\n")
        if not diag:
            return
        pairs = "".join(f"{int(a)},{int(p)}\n" for a, p in zip(labels, preds))
        (tmp / "confusion.csv").write_text("actual,predicted\n" + pairs)
        curves = diag["roc"]
        multi = len(curves) > 1
        rows = ["fpr,tpr,class" if multi else "fpr,tpr"]
        for c, curve in curves.items():
            rows += [f"{f},{t},{c}" if multi else f"{f},{t}" for f, t in zip(curve["fpr"], curve["tpr"])]
        (tmp / "roc.csv").write_text("\n".join(rows) + "\n")


def describe(meta: dict) -> dict:
    """What an artifact is, from its ``pipeline.json``: stage, method, format, storage, quantization scheme and
    the scalar results its stage recorded (e.g. sparsity reached, logit error)."""
    out = {k: meta[k] for k in ("stage", "method", "format", "storage") if k in meta}
    if isinstance(meta.get("quantization"), dict):
        out["quantization"] = meta["quantization"].get("scheme")
    results = meta.get("results") if isinstance(meta.get("results"), dict) else {}
    out["results"] = {k: v for k, v in results.items() if isinstance(v, (int, float, str))}
    if "heads_per_layer" in results:
        out["results"]["heads_per_layer"] = results["heads_per_layer"]
    return out


def write_details(path: str | Path, facts: dict, layers: list[dict], diag: dict, meta: dict) -> None:
    """The non-scalar results (artifact description, per-layer facts, confusion matrix, per-class scores,
    ROC points) as JSON."""
    write_json(path, {"artifact": describe(meta), "facts": facts, "layers": layers, "classification": diag})
