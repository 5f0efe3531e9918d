"""SQuAD v1.1 exact match and F1 (Rajpurkar et al., 2016) as an ``evaluate`` metric module, computed by the pipeline.

Loaded by path, offline: ``evaluate.load("<this directory>")``. Inputs and output keys are those of the hub's
``squad`` metric; the values come from :func:`pipeline.metrics.squad.squad_v1`, which follows the official
v1.1 evaluation script, so they are what the pipeline reports.
"""

import datasets
import evaluate

from pipeline.metrics import squad as squad_metrics
from pipeline.metrics.modules import by_id

_CITATION = """\
@inproceedings{rajpurkar2016squad,
  title={{SQuAD}: 100,000+ Questions for Machine Comprehension of Text},
  author={Rajpurkar, Pranav and Zhang, Jian and Lopyrev, Konstantin and Liang, Percy},
  booktitle={Proceedings of EMNLP},
  pages={2383--2392},
  year={2016}
}
"""

_DESCRIPTION = """\
Exact match and token F1 of predicted answer texts against the gold answers of each question, after the
official answer normalisation (lowercase, no punctuation, no articles, single spaces), the best gold
answer counting; averaged over the questions of the references, as percentages.
"""

_INPUTS = """\
Args:
    predictions: [{"id": str, "prediction_text": str}, ...].
    references: [{"id": str, "answers": {"text": [str, ...], "answer_start": [int, ...]}}, ...]; each
        question needs at least one gold text and a prediction (a missing one is an error, where the
        official script would score it 0).
Returns:
    {"exact_match": float, "f1": float}, both in [0, 100].
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class Squad(evaluate.Metric):
    """SQuAD v1.1 exact match and F1."""

    def _info(self):
        answers = datasets.Sequence({"text": datasets.Value("string"), "answer_start": datasets.Value("int32")})
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_INPUTS,
            features=datasets.Features({
                "predictions": {"id": datasets.Value("string"), "prediction_text": datasets.Value("string")},
                "references": {"id": datasets.Value("string"), "answers": answers},
            }),
            reference_urls=["https://rajpurkar.github.io/SQuAD-explorer/"],
        )

    def _compute(self, predictions, references):
        preds = by_id(predictions, "prediction_text", "predictions")
        golds = {qid: list(answers["text"]) for qid, answers in by_id(references, "answers", "references").items()}
        return squad_metrics.squad_v1(preds, golds)
