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


def _other_settings(params: dict, prefix: str = "") -> list[str]:
    """``key=value`` of every setting except the task's and the training arguments (method knobs, KD, arch)."""
    out = []
    for key, value in params.items():
        if (key == "task" and not prefix) or (key == "train" and isinstance(value, dict) and "epochs" in value):
            continue
        if isinstance(value, dict):
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
