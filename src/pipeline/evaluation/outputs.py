"""The evaluate stage's output files, one concern each, so that ``dvc metrics diff`` shows the task view:

- ``metrics/eval/<task>/<variant>.json`` (DVC ``metrics``): what identifies the variant and its task metrics
  (and flat classification diagnostics);
- ``metrics/facts/<task>/<variant>.json``: model facts (parameters, zeros, sizes);
- ``metrics/speed/<task>/<variant>.json``: latency, throughput, speedup and memory;
- ``metrics/details/<task>/<variant>.json``: the non-scalar results (artifact, per layer, per class, ROC points);
- ``metrics/predictions/<task>/<variant>/``: the model's predictions on the validation split.

The three flat files and the details each carry the variant's identity (``task``, ``variant``) and its lineage
(:mod:`pipeline.evaluation.lineage`), so that any one of them says what it describes (the prediction files keep
the official formats, which have no room for it). The report stage reads
the union of the three and turns the details of every variant into long-format plot data
(``pipeline.report.plotdata``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.artifacts import weights_file
from pipeline.core.files import atomic_dir, write_json
from pipeline.evaluation.scoring import TaskResults


@dataclass
class OutputPaths:
    """Where the evaluate stage writes (module docstring)."""

    metrics: Path
    """Task metrics JSON (``metrics/eval/<task>/<variant>.json``)."""
    facts: Path
    """Model facts JSON."""
    speed: Path
    """Speed and memory JSON."""
    details: Path
    """Non-scalar results JSON."""
    predictions: Path
    """Directory of prediction files."""

    @staticmethod
    def add_arguments(parser) -> None:
        """``--facts``, ``--speed``, ``--details``, ``--predictions`` and the positional ``out`` (the metrics file)."""
        for name, what in (("facts", "JSON of model facts"), ("speed", "JSON of timings and memory"),
                           ("details", "JSON of per-layer and per-class results"),
                           ("predictions", "directory of prediction files")):
            parser.add_argument(f"--{name}", type=Path, required=True, help=what)

    @classmethod
    def from_args(cls, args) -> OutputPaths:
        return cls(args.out, args.facts, args.speed, args.details, args.predictions)


def identity(task: str, model: Path, meta: dict, primary_metric: str, eval_device: str, glue: str = "") -> dict:
    """What identifies an evaluated variant: ``task``, ``variant`` (the artifact's directory name), its ``stage``,
    ``format``, ``method`` (the stage when it records none), the task's ``primary_metric``, where the task
    metrics were computed (``eval_device``) and the GLUE task they score (``glue``, "" for none: the rows of the
    report's GLUE table)."""
    return {"task": task, "variant": model.name, "stage": meta["stage"], "format": meta["format"],
            "method": meta.get("method", meta["stage"]), "primary_metric": primary_metric, "eval_device": eval_device,
            "glue": glue}


def write_outputs(paths: OutputPaths, model: Path, identity: dict, lineage: list[dict], measured: TaskResults,
                  facts: tuple[dict, list[dict]], speed: dict, meta: dict) -> None:
    """Write every output; ``identity`` (``task``, ``variant``, ...) and ``lineage`` head each flat file.

    Args:
        model: the evaluated artifact (its sizes on disk go to the facts, :func:`size_facts`).
        identity: what identifies the variant (:func:`identity`); all of it goes to the metrics file,
            ``task``/``variant`` to the facts and speed files.
        measured: task metrics, diagnostics (flattened into the metrics file, :func:`flat_diagnostics`; whole
            in the details) and the prediction files (replacing the predictions directory).
        facts: :func:`pipeline.evaluation.facts.model_facts` ``(flat, layers)``.
        speed: timings and memory (scalars).
        meta: the artifact's ``pipeline.json`` (:func:`describe` in the details; the weights file it names
            for :func:`size_facts`).
    """
    head = {"task": identity["task"], "variant": identity["variant"], "lineage": lineage}
    with atomic_dir(paths.predictions) as tmp:
        for name, content in measured.predictions.items():
            write_json(tmp / name, content)
    write_json(paths.details, {**head, **details(facts[0], facts[1], measured.diagnostics, meta)})
    write_json(paths.facts, {**head, **facts[0], **size_facts(model, meta)})
    write_json(paths.speed, {**head, **speed})
    write_json(paths.metrics, {**identity, **head, **measured.scores, **flat_diagnostics(measured.diagnostics)})


def size_facts(path: str | Path, meta: dict) -> dict:
    """Size on disk of the weights file (the one ``meta``, the artifact's ``pipeline.json``, names:
    ``model.safetensors`` or e.g. ``model.onnx``) and of the whole artifact directory, in bytes."""
    root = Path(path)
    return {
        "size_bytes": weights_file(root, meta).stat().st_size,
        "artifact_bytes": sum(p.stat().st_size for p in root.rglob("*") if p.is_file()),
    }


def flat_diagnostics(diag: dict) -> dict[str, float]:
    """Scalars of a :func:`pipeline.metrics.diagnostics.classification_report` for the metrics file.

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
    """What an artifact is, from its ``pipeline.json``: stage, method, format, storage, quantization scheme,
    the scalar results its stage recorded (e.g. sparsity reached, logit error) and the resolved params it was
    made with (``params``: the model card's training settings)."""
    out = {k: meta[k] for k in ("stage", "method", "format", "storage", "params") if k in meta}
    if isinstance(meta.get("quantization"), dict):
        out["quantization"] = meta["quantization"].get("scheme")
    results = meta.get("results") if isinstance(meta.get("results"), dict) else {}
    out["results"] = {k: v for k, v in results.items() if isinstance(v, (int, float, str))}
    if "heads_per_layer" in results:
        out["results"]["heads_per_layer"] = results["heads_per_layer"]
    return out


def details(facts: dict, layers: list[dict], diag: dict, meta: dict) -> dict:
    """The non-scalar results: artifact description (:func:`describe`), the flat facts, per-layer facts,
    and the classification report (confusion matrix, per-class scores, ROC points; empty without classes)."""
    return {"artifact": describe(meta), "facts": facts, "layers": layers, "classification": diag}
