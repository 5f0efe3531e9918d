"""SQuAD's official JSON distribution (rajpurkar.github.io/SQuAD-explorer: ``train-v1.1.json``,
``dev-v1.1.json``, ``train-v2.0.json``, ``dev-v2.0.json``) flattened to the pipeline's QA schema.

The official files nest questions inside paragraphs inside articles::

    {"version": "v2.0", "data": [{"title": ..., "paragraphs": [{"context": ..., "qas": [
        {"id": ..., "question": ..., "answers": [{"text": ..., "answer_start": 515}, ...],
         "is_impossible": false}]}]}]}

Each question becomes one row ``{"id", "title", "context", "question", "answers": {"text": [...],
"answer_start": [...]}}``, the layout of the hub's ``squad``/``squad_v2`` data sets. Every gold answer is
kept in file order, duplicates included (v1.1 dev questions have up to five, from different annotators;
the official metric takes the best match over all of them). A SQuAD v2.0 question with ``is_impossible``
true has empty ``text``/``answer_start`` lists; its ``plausible_answers`` (spans a crowd worker wrote but
which do not answer the question) are not gold answers and are not kept. Offsets are checked later, row by
row, by :mod:`pipeline.data.validate`.

SQuAD's other steps live in the layers that own them, each module named ``squad``: features and answer spans in
:mod:`pipeline.tasks.squad`, the official metrics in :mod:`pipeline.metrics.squad`.
"""

from __future__ import annotations

from pipeline.core.errors import PipelineError
from pipeline.data.readers import Table


def is_squad(records: list) -> bool:
    """Whether JSON records are SQuAD articles (``{"title", "paragraphs": [...]}``) rather than flat rows."""
    return bool(records) and isinstance(records[0], dict) and "paragraphs" in records[0]


def _answers(qa: dict) -> dict[str, list]:
    """``{"text": [...], "answer_start": [...]}`` of one question; absent keys become None (checked later)."""
    if qa.get("is_impossible") is True:
        return {"text": [], "answer_start": []}
    answers = qa.get("answers")
    if not isinstance(answers, list):
        return answers  # not a list: the validator names the row
    pairs = [(a.get("text"), a.get("answer_start")) if isinstance(a, dict) else (None, None) for a in answers]
    return {"text": [t for t, _ in pairs], "answer_start": [s for _, s in pairs]}


def _list(parent: dict, key: str, where: str) -> list:
    value = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(value, list):
        raise PipelineError(f"{where}: expected a list '{key}' (SQuAD layout: data -> paragraphs -> qas)")
    return value


def flatten(path: str, articles: list) -> Table:
    """One row per question of SQuAD ``articles`` (the ``data`` list of an official file).

    Args:
        path: the file, named in errors.
        articles: ``[{"title", "paragraphs": [{"context", "qas": [...]}]}]``.

    Returns:
        A :class:`Table` whose rows are located as ``data[a].paragraphs[p].qas[q]``.

    Raises:
        PipelineError: an article without a ``paragraphs`` list or a paragraph without a ``qas`` list.
    """
    rows, places = [], []
    for a, article in enumerate(articles):
        for p, paragraph in enumerate(_list(article, "paragraphs", f"{path}: data[{a}]")):
            for q, qa in enumerate(_list(paragraph, "qas", f"{path}: data[{a}].paragraphs[{p}]")):
                qa = qa if isinstance(qa, dict) else {}
                rows.append({
                    "id": qa.get("id"), "title": article.get("title"), "context": paragraph.get("context"),
                    "question": qa.get("question"), "answers": _answers(qa),
                })
                places.append((a, p, q))
    return Table(path, rows, lambda i: "data[{}].paragraphs[{}].qas[{}]".format(*places[i]))
