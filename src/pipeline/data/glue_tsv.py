"""GLUE's original TSV distribution (gluebenchmark.com, as fetched by GLUE's ``download_glue_data.py``),
mapped to the pipeline's classification schema.

Each task directory holds ``train.tsv`` and ``dev.tsv`` (MNLI: ``dev_matched.tsv`` and
``dev_mismatched.tsv``), tab-separated, UTF-8, with sentences containing unescaped double quotes (so they
are read with quoting off, as GLUE's own loaders do). The columns differ per task:

========  =================================================================  ======================
task      columns of train/dev (header row)                                  gold label
========  =================================================================  ======================
CoLA      no header: source, label, original label (``*`` or empty), sentence  0/1 (2nd column)
SST-2     sentence, label                                                    0/1
MRPC      Quality, #1 ID, #2 ID, #1 String, #2 String                        0/1 (``Quality``)
QQP       id, qid1, qid2, question1, question2, is_duplicate                 0/1
STS-B     index, genre, filename, year, old_index, source1, source2,         float score 0-5
          sentence1, sentence2, score
MNLI      index, promptID, pairID, genre, 4 parse columns, sentence1,        entailment / neutral /
          sentence2, label1 (dev: label1-label5), gold_label                 contradiction
QNLI      index, question, sentence, label                                   entailment / not_entailment
RTE       index, sentence1, sentence2, label                                 entailment / not_entailment
WNLI      index, sentence1, sentence2, label                                 0/1
========  =================================================================  ======================

String labels get the ids of the hub's ``glue`` data set (MNLI: entailment 0, neutral 1, contradiction 2;
QNLI/RTE: entailment 0, not_entailment 1). The text columns are renamed to the hub's names, which are the
ones :data:`pipeline.tasks.glue.TASKS` reads (MNLI's sentence1/sentence2 become premise/hypothesis).
Labels are left as read here; :mod:`pipeline.data.validate` converts and checks them with the layout's
label set.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

from pipeline.data.columns import resolve
from pipeline.data.readers import Table, read_delimited


@dataclass(frozen=True)
class GlueLayout:
    """Where one GLUE task's train/dev TSV files keep the columns the pipeline needs."""

    text: tuple[tuple[str, str], ...]
    """``(pipeline column, file column)`` of each text column, in encoding order."""
    label: str
    """File column of the gold label."""
    num_labels: int
    """Number of classes; 1 for STS-B's similarity score (a regression target)."""
    label_names: tuple[str, ...] = ()
    """String labels in id order, for tasks whose files spell labels out (MNLI, QNLI, RTE)."""
    columns: tuple[str, ...] = ()
    """The file's columns when it has no header row (CoLA); empty: the first line is the header."""

    @property
    def regression(self) -> bool:
        return self.num_labels == 1


_PAIR = (("sentence1", "sentence1"), ("sentence2", "sentence2"))
_ENTAILMENT = ("entailment", "not_entailment")
LAYOUTS: dict[str, GlueLayout] = {
    "cola": GlueLayout((("sentence", "sentence"),), "label", 2,
                       columns=("source", "label", "original_label", "sentence")),
    "sst2": GlueLayout((("sentence", "sentence"),), "label", 2),
    "mrpc": GlueLayout((("sentence1", "#1 String"), ("sentence2", "#2 String")), "Quality", 2),
    "qqp": GlueLayout((("question1", "question1"), ("question2", "question2")), "is_duplicate", 2),
    "stsb": GlueLayout(_PAIR, "score", 1),
    "mnli": GlueLayout((("premise", "sentence1"), ("hypothesis", "sentence2")), "gold_label", 3,
                       ("entailment", "neutral", "contradiction")),
    "qnli": GlueLayout((("question", "question"), ("sentence", "sentence")), "label", 2, _ENTAILMENT),
    "rte": GlueLayout(_PAIR, "label", 2, _ENTAILMENT),
    "wnli": GlueLayout(_PAIR, "label", 2),
}


def read_glue_tsv(path: str, text: str, task: str, explicit: dict[str, str] | None = None,
                  key: str = "prepare.datasets.<name>") -> Table:
    """Rows ``{<text columns>, label, idx}`` of one GLUE train/dev TSV file of ``task``.

    Args:
        path: the file, named in errors.
        text: its decoded content.
        task: a key of :data:`LAYOUTS`.
        explicit: the data set's ``columns`` (``{sentence: text_a}``), replacing the task's file columns; a
            column the file lacks is also looked up under its aliases (:mod:`pipeline.data.columns`).
        key: the data set's params key, named in errors.

    Returns:
        A :class:`Table` with one row per data line (``idx``: 0-based row number, as on the hub) and the
        aliases used in ``Table.renamed``; a line whose field count differs from the header's is kept with
        its problem noted in ``Table.bad``.

    Raises:
        PipelineError: the header lacks a column the task needs, under every name (most likely the wrong
            ``glue`` task, or a copy with other column names: the message gives the ``columns`` entry).
    """
    layout = LAYOUTS[task]
    header = layout.columns or tuple(text.removeprefix("\ufeff").split("\n", 1)[0].rstrip("\r").split("\t"))
    wanted = {**dict(layout.text), "label": layout.label}
    hint = f" (is {key}.glue '{task}' the right task?)"
    found, aliased = resolve(wanted, header, explicit or {}, key, path, hint)
    table = read_delimited(path, text, "\t", csv.QUOTE_NONE, layout.columns or None, set(found.values()))
    rows = []
    for n, raw in enumerate(table.rows):
        row = {ours: raw[theirs] for ours, theirs in found.items() if theirs in raw}
        row["idx"] = n
        rows.append(row)
    return Table(path, rows, table.locate, table.bad, table.columns, aliased)
