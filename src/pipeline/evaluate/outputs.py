"""The evaluate stage's output files: flat metrics, details (per layer, per class) and DVC plot data."""

from __future__ import annotations

from pathlib import Path

from pipeline.core.files import atomic_dir, write_json
from pipeline.models.store import WEIGHTS


def size_facts(path: str | Path) -> dict:
    """Size on disk of the weights file and the whole artifact directory, in bytes."""
    root = Path(path)
    return {
        "size_bytes": (root / WEIGHTS).stat().st_size,
        "artifact_bytes": sum(p.stat().st_size for p in root.rglob("*") if p.is_file()),
    }


def flat_diagnostics(diag: dict) -> dict[str, float]:
    """Scalars of a :func:`pipeline.evaluate.diagnostics.classification_report` for the metrics file.

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
