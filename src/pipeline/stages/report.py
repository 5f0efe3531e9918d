"""The report stage's work (``stages/report.py``): per-task model cards, figures and plot data, the sweeps,
the side-by-side summary of the current pipeline's variants and the GLUE table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.data.params import PrepareParams
from pipeline.report.cited import ReportParams, check_cited
from pipeline.report.collect import Pipeline, collect, current_variants
from pipeline.report.deploy import DeployInputs, points
from pipeline.report.describe import read_counts
from pipeline.report.write import ReportInputs, write_report
from pipeline.tasks import TaskParams


def report_stage(prepare: PrepareParams, task_params: dict[str, TaskParams], schemes: list[str],
                 quantized: list[str], exported: list[str], sweep: list[Any], params: ReportParams, variants: list[str],
                 metrics: Path, details: Path, train: Path, counts: Path, data: Path, models: Path, out: Path) -> None:
    """Collect the evaluations of the current pipeline's variants and write the report into ``out``.

    Args:
        schemes, quantized: ``quantize.schemes`` and ``quantize.sources`` (a quantized variant per pair).
        exported: ``export.sources``; sweep: ``prune.sweep`` points; variants: ``dvc.yaml``'s variants.
        metrics: directory of ``eval/``, ``facts/``, ``speed/`` ``<task>/<variant>.json``; details: directory
            of ``<task>/<variant>.json`` details; train: the dvclive logs; counts: ``metrics/prepare`` (rows per
            data set and split); data, models: prepared data and artifacts (the lineage check).

    Writes: the report directory ``out`` (model cards, figures, plot data, summary, ``glue.md``/``glue.json``).

    Raises:
        PipelineError: an evaluation whose lineage does not match the current data and models, a cited
        number the evaluations do not hold, or a task type without a known metric scale.
    """
    # dvc.yaml's variants, the quantized ones (schemes x sources), the ONNX exports, the sweep points
    current = current_variants(variants, (schemes, quantized), exported, sweep)
    found = collect(metrics, details, Pipeline(list(task_params), current, data, models))
    check_cited(params.cited, found.results)
    deploy = DeployInputs(params.budget, points({t: p.type for t, p in task_params.items()}), models)
    inputs = ReportInputs(train, prepare, read_counts(counts), params.cited, models, deploy)
    write_report(out, found, inputs)
