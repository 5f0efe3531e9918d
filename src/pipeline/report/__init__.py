"""The report: every evaluated variant side by side, from the measured files only.

Inputs are what earlier stages wrote: flat metrics ``<metrics>/<task>/<variant>.json`` (read into one pandas
DataFrame per task, a row per variant: :mod:`.collect`), details ``<details>/<task>/<variant>.json`` (artifact
description and params, per-layer facts, confusion, ROC), training logs ``<train>/<stage>/<key>/plots/metrics/``
(dvclive; per step by :mod:`.collect`, per epoch by :mod:`.epochs`) and the prepare stage's row counts.
:mod:`.tables` builds the summary and Pareto tables, :mod:`.plotdata` the long-format plot data (a ``variant``
column) that ``dvc.yaml``'s plots read, :mod:`.figures` the PNGs, :mod:`.card` the model card (with
:mod:`.describe` for the data and the variants' settings and :mod:`.cited` for published numbers, kept apart),
and :mod:`.task_report` writes one task's directory; :mod:`.sweeps` adds the metric by remaining encoder weights per
pruning method. Nothing here computes a model number; it selects, formats and
compares.
"""
