"""The evaluate stage's output files: flat metrics and details (artifact, per layer, per class, ROC points).

The report stage turns the details of every variant into long-format plot data (``pipeline.report.plotdata``).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.core.files import write_json
from pipeline.models.store import read_meta, weights_file


def size_facts(path: str | Path) -> dict:
    """Size on disk of the weights file and the whole artifact directory, in bytes."""
    root = Path(path)
    return {
        "size_bytes": weights_file(root, read_meta(root)).stat().st_size,
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
