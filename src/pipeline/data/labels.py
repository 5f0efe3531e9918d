"""Class names of a classification data set, carried from the data to every model trained on it.

The prepare stage writes ``labels.json`` (``{"label_names": [...]}``, names in id order) beside a data set's
splits when it knows the names: the data set's ``label_names``, else the official names of its GLUE task
(:data:`GLUE_LABEL_NAMES`). The stages that put a new classification head on a model (finetune, teacher) write
them into its ``config.json`` as ``id2label``/``label2id`` (:func:`name_labels_`), so ``pipeline(
"text-classification")`` answers ``positive``, not ``LABEL_1``; every later artifact copies that config. Without
names (synthetic data, a source with numeric labels and no ``label_names``) nothing is written and transformers'
``LABEL_<i>`` defaults stay.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.core.errors import PipelineError
from pipeline.core.files import write_json

LABELS_FILE = "labels.json"
# The class names of each GLUE task in id order, as the GLUE benchmark's data (and the Hugging Face ``glue``
# data set's ClassLabel features) define them; STS-B is a regression (no classes).
GLUE_LABEL_NAMES: dict[str, tuple[str, ...]] = {
    "cola": ("unacceptable", "acceptable"),
    "sst2": ("negative", "positive"),
    "mrpc": ("not_equivalent", "equivalent"),
    "qqp": ("not_duplicate", "duplicate"),
    "stsb": (),
    "mnli": ("entailment", "neutral", "contradiction"),
    "qnli": ("entailment", "not_entailment"),
    "rte": ("entailment", "not_entailment"),
    "wnli": ("not_entailment", "entailment"),
}


def source_label_names(src) -> tuple[str, ...]:
    """The class names of a data set (``src``, a :class:`pipeline.data.params.DataSource`, not imported so that the
    training stages that read names do not depend on the data params): its ``label_names``, else its GLUE task's
    (:data:`GLUE_LABEL_NAMES`), else none."""
    return tuple(src.label_names) or GLUE_LABEL_NAMES.get(src.glue, ())


def write_labels(directory: str | Path, src) -> None:
    """Write :data:`LABELS_FILE` into a prepared data set's ``directory`` when its names are known
    (:func:`source_label_names`); nothing otherwise, so data without names stays byte-identical."""
    if names := source_label_names(src):
        write_json(Path(directory) / LABELS_FILE, {"label_names": list(names)})


def read_labels(data: str | Path, glue: str = "") -> tuple[str, ...]:
    """The class names of the prepared data set ``data`` (its :data:`LABELS_FILE`), else those of the GLUE task
    ``glue`` (``tasks.<name>.glue``), else ``()``.

    Raises:
        PipelineError: a labels file that is not ``{"label_names": [distinct non-empty strings]}``, named.
    """
    path = Path(data) / LABELS_FILE
    if not path.is_file():
        return GLUE_LABEL_NAMES.get(glue, ())
    try:
        names = json.loads(path.read_text()).get("label_names")
    except (json.JSONDecodeError, AttributeError):
        names = None
    if not (isinstance(names, list) and names and all(isinstance(n, str) and n for n in names)
            and len(set(names)) == len(names)):
        raise PipelineError(f"{path}: expected {{\"label_names\": [distinct names in id order]}} (rerun prepare)")
    return tuple(names)


def name_labels_(config, data: str | Path, task_params) -> None:
    """Set ``config.id2label``/``label2id`` (a transformers config, the new head's) from the class names of the
    prepared data set ``data`` or of the task's GLUE task (:func:`read_labels`; ``task_params`` is
    ``tasks.<name>``, a task without ``glue`` has none); nothing without names (the ``LABEL_<i>`` defaults stay).

    Raises:
        PipelineError: the names do not match the head's ``num_labels`` (naming the data set).
    """
    names = read_labels(data, getattr(task_params, "glue", ""))
    if not names:
        return
    if len(names) != config.num_labels:
        raise PipelineError(f"{data}: {len(names)} label names {list(names)} for a head of {config.num_labels} "
                            "classes (tasks.<name>.num_labels)")
    config.id2label = dict(enumerate(names))
    config.label2id = {name: i for i, name in enumerate(names)}
