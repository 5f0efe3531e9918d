"""The per-task model card (markdown), its tables built from the metrics DataFrame."""

from __future__ import annotations

import pandas as pd

from pipeline.report.tables import BASELINE, cells, fmt, markdown_table, measured, primary_metric

# (header, metrics column, format) of the results table; every cell is one measured number.
CARD_COLUMNS = (
    ("size MB", "size_mb", "{:.3f}"),
    ("dense fp32 MB", "dense_fp32_mb", "{:.3f}"),
    ("params", "params", "{:,}"),
    ("non-zero", "nonzero_params", "{:,}"),
    ("sparsity", "sparsity", "{:.3f}"),
    ("heads", "heads_total", "{}"),
    ("CPU bs1 p50 ms", "cpu_bs1_p50_ms", "{:.3f}"),
    ("CPU bs1 p90 ms", "cpu_bs1_p90_ms", "{:.3f}"),
    ("CPU large p50 ms", "cpu_large_p50_ms", "{:.3f}"),
    ("CPU large seq/s", "cpu_large_seq_per_s", "{:.1f}"),
    ("speedup bs1", "cpu_bs1_speedup", "{:.2f}x"),
    ("speedup large", "cpu_large_speedup", "{:.2f}x"),
    ("CUDA bs1 p50 ms", "cuda_bs1_p50_ms", "{:.3f}"),
    ("CUDA large seq/s", "cuda_large_seq_per_s", "{:.1f}"),
    ("CUDA speedup large", "cuda_large_speedup", "{:.2f}x"),
)


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


def _what(details: dict) -> str:
    """One line on what a variant is, from its pipeline.json as recorded by evaluate."""
    a = details.get("artifact", {})
    parts = [a.get("stage", "?")]
    if a.get("method") and a.get("method") != a.get("stage"):
        parts.append(f"method {a['method']}")
    parts.append(f"format {a.get('format', '?')}")
    if a.get("storage"):
        parts.append(f"storage {a['storage']}")
    if a.get("quantization"):
        parts.append(f"quantization {a['quantization']}")
    heads = a.get("results", {}).get("heads_per_layer")
    if heads:
        parts.append(f"heads per layer {heads}")
    return ", ".join(parts)


def results_table(variants: pd.DataFrame) -> pd.DataFrame:
    """Text cells of the results table: metric, its change against ``finetune``, then :data:`CARD_COLUMNS`."""
    metric = primary_metric(variants)
    numbers = variants.assign(size_mb=variants["size_bytes"] / 1e6)
    numbers["dense_fp32_mb"] = variants["dense_fp32_bytes"] / 1e6 if "dense_fp32_bytes" in variants else None
    numbers["delta"] = variants[metric] - variants.at[BASELINE, metric] if BASELINE in variants.index else None
    columns = [(metric, metric, "{:.4f}"), (f"{metric} vs {BASELINE}", "delta", "{:+.4f}"), *CARD_COLUMNS]
    return cells(numbers, columns)


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


def layers_table(layers: pd.DataFrame) -> pd.DataFrame | None:
    """Text cells ``sparsity / heads / FFN neurons``, a row per variant and a column per encoder layer
    (``-`` past a variant's depth), from the long per-layer frame; None when there is none."""
    if layers.empty:
        return None
    text = pd.DataFrame({"variant": layers["variant"], "layer": layers["layer"],
                         "cell": [f"{fmt(r.get('sparsity'), '{:.3f}')} / {fmt(r.get('heads'), '{}')} / "
                                  f"{fmt(r.get('ffn_neurons'), '{}')}" for r in layers.to_dict("records")]})
    table = text.pivot(index="variant", columns="layer", values="cell").fillna("-")
    return table.rename(columns=lambda i: f"layer {i}")


def _intro(task: str, variants: pd.DataFrame) -> list[str]:
    """Title and how every number was measured (threads, batch sizes, devices)."""
    threads = _first(variants, "threads", "latency_threads")
    batch = _first(variants, "large_batch_size", "latency_batch_size")
    return [f"# Model card: {task}", "",
            "Every number below was measured by this run's evaluate stage on the validation split "
            f"(CPU timing with {threads} thread(s), batch 1 and batch {batch}, each variant timed interleaved "
            f"with `{BASELINE}` in the same process; CUDA: {_first(variants, 'cuda_device', default='none')}; "
            f"task metrics in fp32 on {_eval_devices(variants)}). '-' means not measured.", ""]


def model_card(task: str, variants: pd.DataFrame, details: dict[str, dict], layers: pd.DataFrame,
               figures: dict[str, str], curves: dict[str, list], fronts: dict[str, list[str]]) -> str:
    """The markdown model card of one task.

    Args:
        variants: flat metrics, a row per variant (:func:`pipeline.report.collect.collect`).
        details: ``{variant: details JSON}`` (may lack variants).
        layers: long per-layer facts (:func:`pipeline.report.plotdata.layers_frame`).
        figures: ``{title: relative path}`` of the PNGs written.
        curves: training-loss curves found (their absence is stated, not hidden).
        fronts: ``{"size": [...], "latency": [...]}`` Pareto-optimal variants.

    Returns:
        the card's text.
    """
    metric = primary_metric(variants)
    what = pd.DataFrame({"what it is": [_what(details.get(n, {})) for n in variants.index]}, index=variants.index)
    lines = _intro(task, variants) + ["## Variants", ""] + markdown_table(what)
    lines += ["", "## Results", ""] + markdown_table(results_table(variants))
    lines += ["", f"Pareto-optimal ({metric} vs size): {', '.join(fronts['size'])}.",
              f"Pareto-optimal ({metric} vs CPU large-batch latency): {', '.join(fronts['latency'])}.", ""]
    sections = (("Classification diagnostics", diagnostics_table(variants)),
                ("Per layer (sparsity / heads / FFN neurons)", layers_table(layers)))
    for title, table in sections:
        if table is not None:
            lines += [f"## {title}", ""] + markdown_table(table.rename_axis("variant")) + [""]
    lines += ["## Figures", ""] + [f"![{title}]({path})" for title, path in figures.items()]
    if not curves:
        lines.append("No training logs were found under `metrics/train`, so no loss-curve figure is drawn.")
    lines.append("")
    return "\n".join(lines)
