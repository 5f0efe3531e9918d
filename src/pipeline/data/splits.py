"""How a data set's train and validation splits relate: a validation split drawn from the train rows
(``validation_from_train``) and the rows the two share (``leakage``).

Both compare rows by their *input*, what a model reads: a corpus line's ``text``; a classification row's
text columns (label and ``idx`` aside: the same sentence with another label is still a sentence seen in
training); a QA row's context and question (``id`` aside: copies renumber them). Rows are duplicates when
their inputs are equal strings, nothing normalised.

* The split-off draws whole groups of rows with ``random.Random(prepare.seed)``: rows with the same input
  stay together, and so do the questions of one QA context (a validation question about a paragraph the
  model was trained on is leakage too). So a split-off has no train/validation duplicates by construction.
* The leakage check counts, per validation split, the rows whose input occurs in train, records the count
  in the prepare metrics (``duplicates_of_train``; ``leakage_dropped`` in train) and applies the data set's
  ``leakage`` policy. ``auto`` (the default) stops on a full overlap, which is a mistake (the same file
  twice; two public SQuAD-format copies ship train == dev), and only warns on a partial one, which real
  benchmarks have (GLUE's QQP and SST-2 share some sentences between train and dev): dropping there would
  change an official dev set, and stopping would refuse it.
"""

from __future__ import annotations

import random
import sys

from pipeline.core.errors import PipelineError
from pipeline.data.params import DataSource


def input_key(row: dict, schema: str) -> tuple:
    """What a model reads from a prepared row of ``schema`` (see the module doc), as a hashable tuple."""
    if schema == "qa":
        return row["context"], row["question"]
    if schema == "text":
        return (row["text"],)
    return tuple(sorted((k, v) for k, v in row.items() if k not in ("label", "idx")))


def _group(row: dict, schema: str) -> tuple:
    return (row["context"],) if schema == "qa" else input_key(row, schema)


def split_off(rows: list[dict], share: float, seed: int, schema: str, key: str) -> tuple[list[dict], list[dict]]:
    """``(train, validation)``: about ``share`` of ``rows`` (whole groups, see the module doc) drawn with
    ``seed`` as validation; both keep the rows' order.

    Args:
        rows: the checked train rows.
        share: in (0, 1), ``prepare.datasets.<name>.validation_from_train``.
        key: the data set's params key, named in errors.

    Raises:
        PipelineError: the share gives no validation row, or leaves no train row.
    """
    groups: dict[tuple, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(_group(row, schema), []).append(i)
    order = list(groups)
    random.Random(seed).shuffle(order)
    target, taken = round(share * len(rows)), set()
    for group in order:
        if len(taken) >= target:
            break
        taken.update(groups[group])
    if not taken or len(taken) == len(rows):
        raise PipelineError(
            f"{key}.validation_from_train: {share} of {len(rows)} train rows ({len(groups)} groups of equal input"
            f"{' or context' if schema == 'qa' else ''}) leaves {'no validation' if not taken else 'no train'} row"
        )
    return [r for i, r in enumerate(rows) if i not in taken], [r for i, r in enumerate(rows) if i in taken]


def check_leakage(splits: dict[str, list[dict]], counts: dict[str, dict[str, int]], src: DataSource,
                  key: str) -> None:
    """Count the validation rows whose input occurs in train, record them in ``counts`` and apply
    ``src.leakage`` (dropping from ``splits["train"]`` in place for ``drop``).

    Args:
        splits: ``{split: rows}``; a data set without ``train`` (evaluation-only) is only counted (zero).
        counts: ``{split: counters}`` of :func:`pipeline.data.sources.fetch_counted`, updated in place.

    Raises:
        PipelineError: duplicates under ``error``, a full overlap under ``auto``, or no train row left under
            ``drop``; the message gives the settings that resolve it.
    """
    train = splits.get("train", [])
    seen = {input_key(r, src.type) for r in train}
    found = {}
    for split, rows in splits.items():
        if split != "train":
            found[split] = sum(input_key(r, src.type) in seen for r in rows)
            counts[split]["duplicates_of_train"] = found[split]
    if "train" in counts:
        counts["train"]["leakage_dropped"] = 0
    if not any(found.values()):
        return
    full = [s for s, n in found.items() if n and n == len(splits[s])]
    shared = {input_key(r, src.type) for s, rows in splits.items() if s != "train" for r in rows}
    kept = [r for r in train if input_key(r, src.type) not in shared]
    if src.leakage == "error" or (src.leakage == "auto" and full):
        raise PipelineError(_leak_error(splits, found, bool(full), len(kept), key, src.leakage))
    if src.leakage == "warn" or src.leakage == "auto":
        for split, n in found.items():
            if n:
                print(f"warning: {key}: {n} of {len(splits[split])} {split} rows also occur in train (exact "
                      f"duplicates of their input); kept ({key}.leakage: drop trains without them)", file=sys.stderr)
        return
    if not kept:
        raise PipelineError(f"{key}.leakage: drop leaves no train row: every train row is also a validation row")
    counts["train"]["leakage_dropped"] = len(train) - len(kept)
    counts["train"]["rows"] = len(kept)
    splits["train"] = kept


def _leak_error(splits: dict[str, list[dict]], found: dict[str, int], full: bool, rest: int, key: str,
                policy: str) -> str:
    """The leakage error: what overlaps and the settings that resolve it (``drop`` only where it leaves
    ``rest`` > 0 train rows)."""
    what = "; ".join(f"{n} of {len(splits[s])} {s} rows" for s, n in found.items() if n)
    drop = f"{key}.leakage: drop to train on the other {rest} train rows, or " if rest else f"{key}.leakage: "
    if full:
        return (f"{key}: {what} also occur in train: the whole validation split (exact duplicates of their input; "
                f"the same file twice?); set {key}.validation_from_train: 0.1 to split validation rows off train "
                f"instead, or {drop}warn to keep them")
    return (f"{key}: {what} also occur in train (exact duplicates of their input; {key}.leakage: {policy}); "
            f"set {drop}warn to keep them")
