"""GLUE task metrics (Wang et al., 2019) as an ``evaluate`` metric module, computed by the pipeline.

Loaded by path, offline: ``evaluate.load("<this directory>", "<task>")``. Config names, inputs and output
keys are those of the hub's ``glue`` metric; the values come from :func:`pipeline.metrics.glue.glue_scores`
(scikit-learn and scipy), so they are what the pipeline reports.
"""

import datasets
import evaluate

from pipeline.metrics import glue as glue_metrics

_CITATION = """\
@inproceedings{wang2019glue,
  title={{GLUE}: A Multi-Task Benchmark and Analysis Platform for Natural Language Understanding},
  author={Wang, Alex and Singh, Amanpreet and Michael, Julian and Hill, Felix and Levy, Omer and Bowman, Samuel R.},
  booktitle={International Conference on Learning Representations},
  year={2019}
}
"""

_DESCRIPTION = """\
The official metric(s) of one GLUE task, chosen by the config name: Matthews correlation for CoLA, Pearson
and Spearman correlation for STS-B, accuracy and F1 of class 1 for MRPC and QQP, accuracy for the others.
"""

_INPUTS = """\
Args:
    predictions: one per example: a class id, or for stsb a float score.
    references: the gold class ids (stsb: gold scores), as many as predictions.
Returns:
    cola: {"matthews_correlation"}; stsb: {"pearson", "spearmanr"}; mrpc, qqp: {"accuracy", "f1"};
    sst2, mnli, mnli_matched, mnli_mismatched, qnli, rte, wnli, hans: {"accuracy"}. Fractions and
    correlations as floats; an undefined correlation (a constant side) is None.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class Glue(evaluate.Metric):
    """The metrics of the GLUE task named by the config."""

    def _info(self):
        if self.config_name not in glue_metrics.GLUE_CONFIGS:
            raise KeyError(f"glue config must be one of {sorted(glue_metrics.GLUE_CONFIGS)}, got {self.config_name!r}")
        # float64 scores and no numpy format (the hub module has both as float32; datasets' numpy format
        # returns float32) keep the values the pipeline computes from its logits.
        kind = "float64" if self.config_name == "stsb" else "int64"
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value(kind), "references": datasets.Value(kind)}),
            reference_urls=["https://gluebenchmark.com/"],
        )

    def _compute(self, predictions, references):
        return glue_metrics.glue_scores(self.config_name, predictions, references)
