"""The per-task model card (markdown), its tables built from the metrics DataFrame.

Sections: how everything was measured; the data (source, tokenizer, rows per split, validation label
balance); what each variant is and the settings it was made with; results (metric, size, parameters,
sparsity); size, speed and memory; the task's full official metric set; published reference numbers
(cited, not measured, in a table of their own); classification diagnostics; training and validation per
epoch; per-layer facts; figures. Every measured cell is a number some stage recorded, ``-`` where none did.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from pipeline.data.params import PrepareParams
from pipeline.report.cited import CitedResult, cited_table
from pipeline.report.describe import architecture, label_balance, source_line, split_table, training_table
from pipeline.report.tables import BASELINE, SIG, cells, fmt, markdown_table, measured, primary_metric

TEACHER = "teacher"
"""The distillation teacher's variant name (dvc.yaml's ``teacher`` stage)."""

# (header, metrics column, format) of the results table after the metric and its delta.
RESULT_COLUMNS = (
    ("size MB", "size_mb", "{:.3f}"),
    ("dense fp32 MB", "dense_fp32_mb", "{:.3f}"),
    ("params", "params", "{:,}"),
    ("non-zero", "nonzero_params", "{:,}"),
)
# Zeros of the float weights the artifact was made from, and the zeros quantization rounding added (a fraction that
# can be tiny: significant digits); the single
# ``sparsity`` (both together) is shown only when the evaluate stage recorded neither.
SPARSITY_COLUMNS = (("pruned sparsity", "pruned_sparsity", "{:.3f}"),
                    ("quantization zeros", "quantization_zero_fraction", SIG))
# The size, speed and memory table; memory columns are always there ('-' until measured).
SPEED_COLUMNS = (
    ("size MB", "size_mb", "{:.3f}"),
    ("timed on", "timing_device", "{}"),
    ("CPU bs1 p50 ms", "cpu_bs1_p50_ms", "{:.3f}"),
    ("CPU bs1 p90 ms", "cpu_bs1_p90_ms", "{:.3f}"),
    ("CPU large p50 ms", "cpu_large_p50_ms", "{:.3f}"),
    ("CPU large seq/s", "cpu_large_seq_per_s", "{:.1f}"),
    ("speedup bs1", "cpu_bs1_speedup", "{:.2f}x"),
    ("speedup large", "cpu_large_speedup", "{:.2f}x"),
    ("CPU large calls", "cpu_large_calls", "{}"),
    ("CUDA bs1 p50 ms", "cuda_bs1_p50_ms", "{:.3f}"),
    ("CUDA large p50 ms", "cuda_large_p50_ms", "{:.3f}"),
    ("CUDA large seq/s", "cuda_large_seq_per_s", "{:.1f}"),
    ("CUDA speedup bs1", "cuda_bs1_speedup", "{:.2f}x"),
    ("CUDA speedup large", "cuda_large_speedup", "{:.2f}x"),
    ("CUDA large calls", "cuda_large_calls", "{}"),
    ("CPU bs1 peak RSS MB", "cpu_bs1_peak_rss_mb", "{:.1f}"),
    ("CPU large peak RSS MB", "cpu_large_peak_rss_mb", "{:.1f}"),
    ("CPU bs1 forward RSS MB", "cpu_bs1_forward_rss_mb", "{:.1f}"),
    ("CPU large forward RSS MB", "cpu_large_forward_rss_mb", "{:.1f}"),
    ("CUDA large max allocated MB", "cuda_large_max_allocated_mb", "{:.1f}"),
)
# The official metric names of every task the pipeline scores (GLUE's, SQuAD v1.1's and v2.0's, answer-text
# metrics), in display order; MNLI's mismatched split repeats them with a ``_mismatched`` suffix.
TASK_METRICS = ("accuracy", "exact_match", "exact", "f1", "matthews_correlation", "pearson", "spearmanr",
                "total", "HasAns_exact", "HasAns_f1", "HasAns_total", "NoAns_exact", "NoAns_f1", "NoAns_total",
                "best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh", "bleu", "rouge1", "rouge2",
                "rougeL", "meteor")
# (header, epoch-table column) of the per-epoch table; the task's primary metric joins when logged.
EPOCH_COLUMNS = (("train loss", "train_loss"), ("val loss", "val_loss"), ("accuracy", "accuracy"),
                 ("macro P", "macro_precision"), ("macro R", "macro_recall"), ("macro F1", "macro_f1"),
                 ("exact match", "exact_match"), ("exact", "exact"), ("f1", "f1"))


@dataclass
class CardInputs:
    """What a card shows besides the evaluate stage's files."""

    epochs: pd.DataFrame | None = None
    """Per-epoch records of the task's runs (:func:`pipeline.report.epochs.epoch_frame`)."""
    prepare: PrepareParams | None = None
    """The ``prepare`` params: data source and tokenizer."""
    counts: dict[str, dict[str, int]] | None = None
    """The task's data set in ``metrics/prepare/``: ``{split: {"rows", ...}}``."""
    cited: list[CitedResult] = field(default_factory=list)
    """``report.cited``: published numbers (those of this task are shown, labelled cited)."""
    configs: dict[str, dict] = field(default_factory=dict)
    """``{variant: its artifact's config.json}`` (:func:`pipeline.report.describe.read_configs`): what each model is."""


def _first(variants: pd.DataFrame, *columns: str, default: str = "?"):
    """The first variant's value of the first of ``columns`` it has measured (run-wide settings)."""
    row = variants.iloc[0]
    return next((row[c] for c in columns if c in row and measured(row[c])), default)


def _eval_devices(variants: pd.DataFrame) -> str:
    """Where the task metrics were computed: one device (``"cpu"``), or the variants per device,
    e.g. ``"cpu (quantize), cuda (finetune, teacher)"``."""
    devices = variants["eval_device"] if "eval_device" in variants else [None] * len(variants)
    by_device: dict[str, list[str]] = {}
    for name, device in zip(variants.index, devices):
        by_device.setdefault(device if measured(device) else "cpu", []).append(name)
    if len(by_device) == 1:
        return next(iter(by_device))
    return ", ".join(f"{d} ({', '.join(n)})" for d, n in sorted(by_device.items()))


def _method(artifact: dict) -> str | None:
    """What the stage did, in words: the teacher records the model it started from as its method."""
    method = artifact.get("method")
    if not method or method == artifact.get("stage"):
        return None
    if artifact.get("stage") == TEACHER:
        return "trained from a random init" if method == "scratch" else f"trained from `{method}`"
    return f"method {method}"


def _what(details: dict) -> str:
    """One line on what a variant is, from its pipeline.json as recorded by evaluate: stage, what it did, format,
    storage, quantization, heads kept, and the logit error against its source (significant digits, :data:`SIG`)."""
    a = details.get("artifact", {})
    parts = [a.get("stage", "?")] + list(filter(None, [_method(a)]))
    parts.append(f"format {a.get('format', '?')}")
    if a.get("storage"):
        parts.append(f"storage {a['storage']}")
    if a.get("quantization"):
        parts.append(f"quantization {a['quantization']}")
    heads = a.get("results", {}).get("heads_per_layer")
    if heads:
        parts.append(f"heads per layer {heads}")
    error = a.get("results", {}).get("logit_max_abs_error")
    if measured(error):
        parts.append(f"max logit error vs its source {fmt(error, SIG)}")
    return ", ".join(parts)


def teacher_note(variants: pd.DataFrame) -> str | None:
    """A warning when the teacher scored below its student (the fine-tuned :data:`BASELINE`) on the primary
    metric, which every task here maximises; None otherwise or when either was not measured."""
    metric = primary_metric(variants)
    if TEACHER not in variants.index or BASELINE not in variants.index or metric not in variants:
        return None
    teacher, student = variants.at[TEACHER, metric], variants.at[BASELINE, metric]
    if not (measured(teacher) and measured(student)) or teacher >= student:
        return None
    return (f"**Warning: the teacher scores below its student** ({metric} {teacher:.4f} vs {BASELINE} "
            f"{student:.4f}): distilled variants learn from a weaker model; train a stronger teacher "
            "(`teacher.<task>`) before reading the distill rows.")


def sparsity_columns(frame: pd.DataFrame) -> tuple[tuple[str, str, str], ...]:
    """:data:`SPARSITY_COLUMNS` when the frame has either, else the single ``sparsity`` column."""
    if any(c in frame for _, c, _ in SPARSITY_COLUMNS):
        return SPARSITY_COLUMNS
    return (("sparsity", "sparsity", "{:.3f}"),)


def _numbers(variants: pd.DataFrame) -> pd.DataFrame:
    """The metrics with sizes in MB and the primary metric's change against ``finetune`` (``delta``)."""
    metric = primary_metric(variants)
    numbers = variants.assign(size_mb=variants["size_bytes"] / 1e6)
    numbers["dense_fp32_mb"] = variants["dense_fp32_bytes"] / 1e6 if "dense_fp32_bytes" in variants else None
    numbers["delta"] = variants[metric] - variants.at[BASELINE, metric] if BASELINE in variants.index else None
    return numbers


def results_table(variants: pd.DataFrame) -> pd.DataFrame:
    """Text cells of the results table: metric, its change against ``finetune``, size, parameters, sparsity
    (:func:`sparsity_columns`) and heads."""
    metric = primary_metric(variants)
    columns = [(metric, metric, "{:.4f}"), (f"{metric} vs {BASELINE}", "delta", "{:+.4f}"), *RESULT_COLUMNS,
               *sparsity_columns(variants), ("heads", "heads_total", "{}")]
    return cells(_numbers(variants), columns)


def speed_table(variants: pd.DataFrame) -> pd.DataFrame:
    """Text cells of :data:`SPEED_COLUMNS`: size, the timing device, CPU/CUDA latency, throughput, speedups,
    timed calls and memory."""
    return cells(_numbers(variants), SPEED_COLUMNS)


def task_metrics_table(variants: pd.DataFrame) -> pd.DataFrame | None:
    """Text cells of every official task metric the variants have (:data:`TASK_METRICS`, then MNLI's
    ``_mismatched`` ones): counts as integers, the rest to 4 decimals; None when there are none."""
    names = [f"{m}{s}" for s in ("", "_mismatched") for m in TASK_METRICS if f"{m}{s}" in variants]
    if not names:
        return None
    return cells(variants, [(n, n, "{:,}" if "total" in n.split("_") else "{:.4f}") for n in names])


def diagnostics_table(variants: pd.DataFrame) -> pd.DataFrame | None:
    """Text cells of the classification diagnostics (accuracy, macro F1, AUC, per-class P/R/F1), or None
    for a task without them (no ``auc`` column)."""
    if "auc" not in variants:
        return None
    classes = sorted({c.split("_")[-1] for c in variants.columns if c.startswith("precision_")})
    columns = [("accuracy", "accuracy", "{:.4f}"), ("macro F1", "macro_f1", "{:.4f}"), ("AUC", "auc", "{:.4f}")]
    columns += [(f"{short} {c}", f"{key}_{c}", "{:.4f}") for c in classes
                for short, key in (("P", "precision"), ("R", "recall"), ("F1", "f1"))]
    return cells(variants, columns)


def epoch_table(epochs: pd.DataFrame | None, metric: str) -> pd.DataFrame | None:
    """Text cells of the per-epoch records (index ``run``; epoch, training and validation loss, accuracy,
    macro P/R/F1, EM/F1 and the primary metric where logged); None without records."""
    if epochs is None or epochs.empty:
        return None
    columns = [(h, c) for h, c in EPOCH_COLUMNS if c in epochs]
    if metric in epochs and metric not in [c for _, c in columns]:
        columns.append((metric, metric))
    table = cells(epochs.set_index("run"), [("epoch", "epoch", "{}"), ("step", "step", "{}"),
                                            *((h, c, "{:.4f}") for h, c in columns)])
    return table


def layers_table(layers: pd.DataFrame) -> tuple[str, pd.DataFrame] | None:
    """``(what the cells hold, text cells)``: ``sparsity / heads / FFN neurons`` per variant (rows) and
    encoder layer (columns; ``-`` past a variant's depth), the pruned sparsity where recorded; None when
    there are no per-layer facts."""
    if layers.empty:
        return None
    key = "pruned_sparsity" if "pruned_sparsity" in layers else "sparsity"
    text = pd.DataFrame({"variant": layers["variant"], "layer": layers["layer"],
                         "cell": [f"{fmt(r.get(key), '{:.3f}')} / {fmt(r.get('heads'), '{}')} / "
                                  f"{fmt(r.get('ffn_neurons'), '{}')}" for r in layers.to_dict("records")]})
    table = text.pivot(index="variant", columns="layer", values="cell").fillna("-")
    return f"{key.replace('_', ' ')} / heads / FFN neurons", table.rename(columns=lambda i: f"layer {i}")


def _intro(task: str, variants: pd.DataFrame) -> list[str]:
    """Title and how every number was measured (threads, batch sizes, devices)."""
    threads = _first(variants, "threads", "latency_threads")
    batch = _first(variants, "large_batch_size", "latency_batch_size")
    budget = _first(variants, "latency_budget_s")
    return [f"# Model card: {task}", "",
            "Every number below was measured by this run's evaluate stage on the validation split "
            f"(each variant timed on the device it runs on ('timed on'; CPU timing with {threads} thread(s)), "
            f"batch 1 and batch {batch}, interleaved with `{BASELINE}` in the same process, for at most "
            f"{budget} s per batch size ('calls': timed calls made); "
            f"CUDA: {_first(variants, 'cuda_device', default='none')}; "
            f"task metrics in fp32 on {_eval_devices(variants)}), except the table headed cited. "
            "'-' means not measured.", ""]


def _section(title: str, table: pd.DataFrame | None, index: str, note: str = "") -> list[str]:
    """A ``## title`` section with an optional note and the table (nothing when there is no table)."""
    if table is None:
        return []
    return [f"## {title}", ""] + ([note, ""] if note else []) + markdown_table(table.rename_axis(index)) + [""]


def data_section(task: str, details: dict[str, dict], inputs: CardInputs) -> list[str]:
    """What data the numbers were measured on: source and tokenizer, rows per split (prepare counts),
    validation label balance."""
    lines = ["## Data", "", source_line(task, inputs.prepare), ""]
    splits = split_table(inputs.counts)
    if splits is None:
        lines += [f"Rows per split: `metrics/prepare/` has no data set `{task}`.", ""]
    else:
        lines += ["Rows per split (`metrics/prepare/`: kept, and dropped or fixed by the data checks):", ""]
        lines += markdown_table(splits) + [""]
    balance = label_balance(details)
    if balance is not None:
        lines += ["Validation label balance (gold classes of the examples every metric was measured on, from "
                  "the evaluate stage's per-class support):", ""] + markdown_table(balance) + [""]
    return lines


def model_card(task: str, variants: pd.DataFrame, details: dict[str, dict], layers: pd.DataFrame,
               figures: dict[str, str], fronts: dict[str, list[str]], inputs: CardInputs | None = None,
               logged: bool = True) -> str:
    """The markdown model card of one task.

    Args:
        variants: flat metrics, a row per variant (:func:`pipeline.report.collect.collect`).
        details: ``{variant: details JSON}`` (may lack variants).
        layers: long per-layer facts (:func:`pipeline.report.plotdata.layers_frame`).
        figures: ``{title: relative path}`` of the PNGs written.
        fronts: ``{"size": [...], "speedup": [...]}`` Pareto-optimal variants (:func:`pipeline.report.pareto.pareto`).
        inputs: per-epoch records, data description and cited numbers (:class:`CardInputs`).
        logged: whether any training log was found (their absence is stated, not hidden).

    Returns:
        the card's text.
    """
    inputs = inputs or CardInputs()
    metric = primary_metric(variants)
    what = pd.DataFrame({"what it is": [_what(details.get(n, {})) for n in variants.index],
                         "model (its config.json)": [architecture(inputs.configs.get(n)) for n in variants.index]},
                        index=variants.index)
    lines = _intro(task, variants) + data_section(task, details, inputs)
    lines += _section("Variants", what, "variant")
    lines += _section("Training settings", training_table(list(variants.index), details), "variant",
                      "As each variant's stage recorded them in its `pipeline.json` ('-': that stage does not train).")
    lines += _section("Results", results_table(variants), "variant")
    lines += [note, ""] if (note := teacher_note(variants)) else []
    lines += [f"Pareto-optimal ({metric} vs size): {', '.join(fronts['size'])}.",
              f"Pareto-optimal ({metric} vs interleaved speed-up, ties within the p10-p90 spread): "
              f"{', '.join(fronts['speedup'])}.", ""]
    lines += _section("Size, speed and memory", speed_table(variants), "variant")
    lines += _section("Task metrics (official set)", task_metrics_table(variants), "variant")
    lines += _section("Published reference numbers (cited, not measured)", cited_table(inputs.cited, task), "model",
                      "Numbers from the literature for orientation, not measured by this pipeline and on data "
                      "that may differ from the data above; they are never compared or plotted.")
    lines += _section("Classification diagnostics", diagnostics_table(variants), "variant")
    lines += _section("Per epoch (validation split, logged while training)", epoch_table(inputs.epochs, metric),
                      "run", "train loss: the run's training objective averaged over the epoch's steps (distillation: "
                      "the KD mix; pruning methods: with their penalty); val loss: the task's hard-label loss on the "
                      "validation split in eval mode; step: optimizer steps done when the epoch ended.")
    per_layer = layers_table(layers)
    if per_layer is not None:
        lines += _section(f"Per layer ({per_layer[0]})", per_layer[1], "variant")
    lines += ["## Figures", ""] + [f"![{title}]({path})" for title, path in figures.items()]
    if not logged:
        lines.append("No training logs were found under `metrics/train`, so no loss-curve figure is drawn.")
    lines.append("")
    return "\n".join(lines)
