"""What a model card says about the data it measured and how each variant was made (text, not numbers
computed here).

The data: the source and tokenizer from the ``prepare`` params, the rows kept, dropped and fixed per split from
``metrics/prepare/`` (the prepare stages' counts), and the validation label balance from the evaluate
stage's per-class support (the examples every number was measured on). The variants: the settings their
stage recorded in ``pipeline.json`` (``params``), as the evaluate stage copied them into the details.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pipeline.core.errors import PipelineError
from pipeline.data.params import DataSource, PrepareParams
from pipeline.report.tables import BASELINE

# (header, TrainArgs field) of the training settings table.
TRAIN_COLUMNS = (("epochs", "epochs"), ("batch size", "batch_size"), ("grad accum", "grad_accum_steps"),
                 ("lr", "lr"), ("weight decay", "weight_decay"), ("warmup", "warmup_ratio"),
                 ("precision", "precision"), ("seed", "seed"))


def read_counts(path: str | Path) -> dict[str, dict[str, dict[str, int]]]:
    """The prepare stages' row counts, ``{data set: {split: {"rows", "bad_rows_dropped", ...}}}``, from
    ``metrics/prepare/`` (one ``<data set>.json`` per ``prepare@<data set>`` stage) or one such file.

    Raises:
        PipelineError: the path is missing, or a file is not a JSON mapping of that shape (one line naming it).
    """
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path}: not found (run the prepare stages first)")
    counts: dict = {}
    for file in sorted(path.glob("*.json")) if path.is_dir() else [path]:
        try:
            part = json.loads(file.read_text())
        except json.JSONDecodeError as err:
            raise PipelineError(f"{file}: not valid JSON ({err.msg}, line {err.lineno})") from None
        if not isinstance(part, dict) or not all(isinstance(v, dict) for v in part.values()):
            raise PipelineError(f"{file}: expected {{data set: {{split: counts}}}}")
        counts.update(part)
    return counts


def source_line(task: str, prepare: PrepareParams | None) -> str:
    """One line: where the task's data came from and the tokenizer (``prepare.datasets.<task>``)."""
    if prepare is None:
        return "Data source: not given to the report."
    src: DataSource | None = prepare.datasets.get(task)
    where = "not in `prepare.datasets`" if src is None else f"`{src.source}` ({src.type})"
    if src is not None and src.source == "synthetic":
        where += f", generated with seed {prepare.seed}"
    if src is not None and src.glue:
        where += f", GLUE task `{src.glue}`"
    if src is not None and src.label_names:
        where += f", labels {', '.join(f'{i} = {n}' for i, n in enumerate(src.label_names))}"
    return f"Data source: {where}. Tokenizer: `{prepare.tokenizer}`."


def split_table(counts: dict[str, dict[str, int]] | None) -> pd.DataFrame | None:
    """Text cells of the prepare counts of one data set, a row per split (``rows`` first), or None."""
    if not counts:
        return None
    names = sorted({k for c in counts.values() for k in c}, key=lambda k: (k != "rows", k))
    table = pd.DataFrame({n.replace("_", " "): [f"{c[n]:,}" if n in c else "-" for c in counts.values()]
                          for n in names}, index=pd.Index(list(counts), name="split"))
    return table


def label_balance(details: dict[str, dict]) -> pd.DataFrame | None:
    """Validation examples per gold class and their share, from the per-class support the evaluate stage
    recorded (the baseline's, else the first variant's with classes); None without classes."""
    names = sorted(details, key=lambda n: (n != BASELINE, n))
    support = next((d["classification"]["per_class"]["support"] for n in names
                    if (d := details[n]).get("classification") and "per_class" in d["classification"]), None)
    if not support:
        return None
    total = sum(support)
    return pd.DataFrame({"examples": [f"{n:,}" for n in support],
                         "share": [f"{n / total:.3f}" if total else "-" for n in support]},
                        index=pd.Index([str(c) for c in range(len(support))], name="class"))


def _train_args(params: dict) -> dict | None:
    """The first ``train`` mapping (a :class:`~pipeline.config.args.TrainArgs`) found in a stage's params."""
    if isinstance(params.get("train"), dict) and "epochs" in params["train"]:
        return params["train"]
    return next((found for v in params.values() if isinstance(v, dict) and (found := _train_args(v))), None)


def _used(value: dict) -> dict:
    """An ``arch`` mapping (:class:`~pipeline.models.build.ArchParams`) as far as it was used: a model built from a
    checkpoint (``base`` other than ``scratch``) takes its sizes from that checkpoint, so only ``base`` and ``seed``
    (of a new head) are settings; any other mapping as it is."""
    if value.get("base", "scratch") == "scratch":
        return value
    return {k: v for k, v in value.items() if k in ("base", "seed")}


def _other_settings(params: dict, prefix: str = "") -> list[str]:
    """``key=value`` of every setting except the task's and the training arguments (method knobs, KD, arch);
    the sizes of an ``arch`` built from a checkpoint are left out (:func:`_used`: its config.json says them)."""
    out = []
    for key, value in params.items():
        if (key == "task" and not prefix) or (key == "train" and isinstance(value, dict) and "epochs" in value):
            continue
        if isinstance(value, dict):
            value = _used(value)
            out += _other_settings(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}={value}")
    return out


def training_table(variants: list[str], details: dict[str, dict]) -> pd.DataFrame | None:
    """Text cells of each variant's settings as its stage recorded them (``artifact.params`` in the details):
    the training arguments (``-`` for a stage that does not train) and its other settings; None when no
    variant's details carry params."""
    params = {n: details.get(n, {}).get("artifact", {}).get("params") for n in variants}
    if not any(isinstance(p, dict) for p in params.values()):
        return None
    rows = {}
    for name, p in params.items():
        p = p if isinstance(p, dict) else {}
        train = _train_args(p) or {}
        rows[name] = {h: str(train[k]) if k in train else "-" for h, k in TRAIN_COLUMNS}
        rows[name]["other settings"] = ", ".join(_other_settings(p)) or "-"
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("variant")


# (what, config.json keys in the order tried) of the model line; the second key is DistilBERT's spelling.
CONFIG_SIZES = (("layers", ("num_hidden_layers", "n_layers")), ("hidden", ("hidden_size", "dim")),
                ("heads", ("num_attention_heads", "n_heads")), ("FFN", ("intermediate_size", "hidden_dim")),
                ("vocab", ("vocab_size",)))


def read_configs(models: Path | None, task: str, variants: list[str]) -> dict[str, dict]:
    """``{variant: config.json}`` of the artifacts ``<models>/<task>/<variant>/`` that have one (none without
    ``models``).

    Raises:
        PipelineError: a config.json that is not a JSON object (one line naming it).
    """
    out = {}
    for name in variants if models is not None else []:
        path = Path(models) / task / name / "config.json"
        if path.is_file():
            try:
                out[name] = json.loads(path.read_text())
            except json.JSONDecodeError as err:
                raise PipelineError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
            if not isinstance(out[name], dict):
                raise PipelineError(f"{path}: expected a JSON object")
    return out


def _per_layer(config: dict, key: str, uniform) -> str | None:
    """``key`` (a pruned model's per-layer sizes) when it differs from the uniform size, else None."""
    sizes = config.get(key)
    return f"{key.replace('_', ' ')} {sizes}" if isinstance(sizes, list) and set(sizes) != {uniform} else None


def architecture(config: dict | None) -> str:
    """One line on what a model is, from its own ``config.json`` (never from params): family, layers, width,
    heads, FFN width, vocabulary, the per-layer heads/FFN sizes of a pruned model and the class names
    (``id2label``) when they are not the ``LABEL_<i>`` defaults; ``-`` without a config."""
    if not config:
        return "-"
    parts = [str(config.get("model_type", "?"))]
    for what, keys in CONFIG_SIZES:
        value = next((config[k] for k in keys if k in config), None)
        if value is not None:
            parts.append(f"{what} {value}")
    heads = next((config[k] for k in ("num_attention_heads", "n_heads") if k in config), None)
    parts += filter(None, [_per_layer(config, "heads_per_layer", heads),
                           _per_layer(config, "intermediate_per_layer", config.get("intermediate_size"))])
    labels = config.get("id2label") or {}
    if labels and any(str(v) != f"LABEL_{k}" for k, v in labels.items()):
        parts.append("labels " + ", ".join(f"{k} = {v}" for k, v in sorted(labels.items(), key=lambda x: int(x[0]))))
    return ", ".join(parts)
