"""Lineage of an evaluation: what its numbers were computed from, written into every metrics file.

A metrics file outlives the run that wrote it: ``dvc repro`` of a few ``evaluate@...`` targets refreshes
those files and leaves the others as they were, from whatever model and data were current then. The
lineage lets the report keep only the files that belong to the current pipeline (:func:`mismatch`).

It is a list of records, one per input (``role``, ``path``, ``sha256``): a list because ``dvc metrics
diff``/``show`` skip list values (measured with DVC 3.67), so the hashes, which change with every rerun, stay
out of the task view while the file still carries them.

- ``artifact``: the evaluated model directory, with its ``stage``, ``method``, the ``params`` it was made
  with and its ``parents`` (``{path: sha256}``) from its ``pipeline.json``;
- ``data``: the task's prepared data directory the metrics were computed on;
- ``tokenizer``: the tokenizer files inside the artifact (every stage copies them byte for byte from
  ``prepare``'s ``data/tokenizer``);
- ``baseline``: the dense model the speed was measured against (``models/<task>/finetune``);
- ``evaluate``: the measurement ``params`` (``evaluate`` section).

Directory hashes are :func:`pipeline.core.files.dir_hash` (sha256 over relative names and file contents).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pipeline.core.files import dir_hash, file_hash

# The tokenizer files an artifact carries (pipeline.models.store.TOKENIZER_FILES; repeated so that the report,
# which imports this module, does not depend on the model code).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
ROLES = ("artifact", "data", "tokenizer", "baseline", "evaluate")


def tokenizer_hash(path: str | Path) -> str:
    """sha256 over the names and contents of the tokenizer files (:data:`TOKENIZER_FILES`) present in ``path``.

    Raises:
        FileNotFoundError: when ``path`` has none of them.
    """
    root = Path(path)
    found = [name for name in TOKENIZER_FILES if (root / name).is_file()]
    if not found:
        raise FileNotFoundError(f"{root}: no tokenizer files ({', '.join(TOKENIZER_FILES)})")
    digest = hashlib.sha256()
    for name in found:
        digest.update(name.encode())
        digest.update(file_hash(root / name).encode())
    return digest.hexdigest()


def lineage(model: str | Path, meta: dict, data: str | Path, baseline: str | Path, settings: dict) -> list[dict]:
    """The lineage records of evaluating ``model`` (module docstring).

    Args:
        model: the evaluated artifact directory; ``meta`` its ``pipeline.json``.
        data: the task's prepared data directory.
        baseline: the dense artifact the speed was measured against.
        settings: the resolved ``evaluate`` params.

    Returns:
        one record per role of :data:`ROLES`, in that order.
    """
    made = {k: meta.get(k) for k in ("stage", "method", "params", "parents")}
    return [{"role": "artifact", "path": str(model), "sha256": dir_hash(model), **made},
            {"role": "data", "path": str(data), "sha256": dir_hash(data)},
            {"role": "tokenizer", "path": str(model), "sha256": tokenizer_hash(model)},
            {"role": "baseline", "path": str(baseline), "sha256": dir_hash(baseline)},
            {"role": "evaluate", "params": settings}]


def hashes(records: object) -> dict[str, str] | None:
    """``{role: sha256}`` of a lineage list, or None when ``records`` is not one (a file from before lineage,
    or damaged)."""
    if not isinstance(records, list) or not all(isinstance(r, dict) and "role" in r for r in records):
        return None
    found = {r["role"]: r.get("sha256") for r in records}
    return found if set(ROLES) <= set(found) else None


def mismatch(records: object, current: dict[str, str]) -> str | None:
    """Why a metrics file's lineage does not match the current pipeline, or None when it does.

    Args:
        records: the file's ``lineage`` value.
        current: ``{role: sha256}`` of the current inputs for the roles to check, e.g. ``artifact`` (the
            variant's artifact now), ``data``, ``tokenizer`` (of ``data/tokenizer``), ``baseline``.

    Returns:
        a short reason naming the first role that differs (``"data differs: evaluated on 1a2b3c4d..., current
        9f8e7d6c..."``), ``"no lineage"`` for a file without one, or None.
    """
    found = hashes(records)
    if found is None:
        return "no lineage (written before evaluate recorded it)"
    for role, sha in current.items():
        if found.get(role) != sha:
            return f"{role} differs: evaluated {str(found.get(role))[:12]}, current {sha[:12]}"
    return None
