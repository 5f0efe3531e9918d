"""SQuAD v2.0 metrics (Rajpurkar et al., 2018) as an ``evaluate`` metric module, computed by the pipeline.

Loaded by path, offline: ``evaluate.load("<this directory>")``. Inputs and output keys are those of the hub's
``squad_v2`` metric; the values come from :func:`pipeline.metrics.squad.squad_v2`, which follows the official
v2.0 evaluation script, so they are what the pipeline reports.
"""

import datasets
import evaluate

from pipeline.metrics import squad as squad_metrics
from pipeline.metrics.modules import by_id

_CITATION = """\
@inproceedings{rajpurkar2018know,
  title={Know What You Don't Know: Unanswerable Questions for {SQuAD}},
  author={Rajpurkar, Pranav and Jia, Robin and Liang, Percy},
  booktitle={Proceedings of ACL},
  pages={784--789},
  year={2018}
}
"""

_DESCRIPTION = """\
Exact match and token F1 with unanswerable questions: a question without gold answers scores 1 for an
empty prediction and 0 for any text; a question whose no-answer score exceeds the threshold counts as
predicted unanswerable. Also per answerable (HasAns) and unanswerable (NoAns) question, and the best
scores over all thresholds with the thresholds that reach them.
"""

_INPUTS = """\
Args:
    predictions: [{"id": str, "prediction_text": str, "no_answer_probability": float}, ...]; the text is
        the best non-empty answer (or "" for none) and the no-answer score any real number, higher meaning
        more likely unanswerable (the pipeline passes null score - best span score).
    references: [{"id": str, "answers": {"text": [str, ...], "answer_start": [int, ...]}}, ...]; empty
        lists mark an unanswerable question.
    no_answer_threshold: a question is predicted unanswerable when its no-answer score is above this
        (default 1.0, as the hub module).
Returns:
    exact, f1 (percentages), total; HasAns_exact, HasAns_f1, HasAns_total when some question has an
    answer; NoAns_exact, NoAns_f1, NoAns_total when some has none; best_exact, best_exact_thresh,
    best_f1, best_f1_thresh.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class SquadV2(evaluate.Metric):
    """SQuAD v2.0 metrics with the no-answer threshold and the best-threshold search."""

    def _info(self):
        answers = datasets.Sequence({"text": datasets.Value("string"), "answer_start": datasets.Value("int32")})
        # float64 no-answer scores (the hub module stores float32): thresholds compare the pipeline's values.
        predictions = {"id": datasets.Value("string"), "prediction_text": datasets.Value("string"),
                       "no_answer_probability": datasets.Value("float64")}
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_INPUTS,
            features=datasets.Features({
                "predictions": predictions,
                "references": {"id": datasets.Value("string"), "answers": answers},
            }),
            reference_urls=["https://rajpurkar.github.io/SQuAD-explorer/"],
        )

    def _compute(self, predictions, references, no_answer_threshold=1.0):
        preds = by_id(predictions, "prediction_text", "predictions")
        diffs = by_id(predictions, "no_answer_probability", "predictions")
        golds = {qid: list(answers["text"]) for qid, answers in by_id(references, "answers", "references").items()}
        return squad_metrics.squad_v2(preds, golds, diffs, no_answer_threshold)
