"""The report: every evaluated variant side by side, from the measured files only.

Inputs are what earlier stages wrote: flat metrics ``<metrics>/<task>/<variant>.json``, details
``<details>/<task>/<variant>.json`` (artifact description, per-layer facts, confusion, ROC) and training logs
``<train>/<stage>/<key>/plots/metrics/train/loss.tsv`` (dvclive). Nothing here computes a model number; it
selects, formats and compares.
"""
