"""The per-task model card (markdown) and the figures and plot data behind it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from pipeline.report.tables import BASELINE, pareto_front


# ------------------------------------------------------------------------------------------- model card
def fmt(value, spec: str) -> str:
    """``spec.format(value)``, or ``-`` for a value that was not measured (None)."""
    return "-" if value is None else spec.format(value)


# (header, metrics key, format) of the variants table; every cell is one measured number.
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


def _eval_devices(variants: dict[str, dict]) -> str:
    """Where the task metrics were computed: one device (``"cpu"``), or the variants per device,
    e.g. ``"cpu (quantize), cuda (finetune, teacher)"``."""
    by_device: dict[str, list[str]] = {}
    for name in sorted(variants):
        by_device.setdefault(variants[name].get("eval_device", "cpu"), []).append(name)
    if len(by_device) == 1:
        return next(iter(by_device))
    return ", ".join(f"{d} ({', '.join(n)})" for d, n in sorted(by_device.items()))


def card_values(m: dict) -> dict:
    """The card's derived units (MB) next to the raw metrics."""
    return {**m, "size_mb": m["size_bytes"] / 1e6,
            "dense_fp32_mb": m["dense_fp32_bytes"] / 1e6 if "dense_fp32_bytes" in m else None}


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


def model_card(task: str, variants: dict[str, dict], details: dict[str, dict], figures: dict[str, str],
               curves: dict[str, list], fronts: dict[str, list[str]]) -> str:
    """The markdown model card of one task.

    Args:
        variants: ``{variant: flat metrics}``.
        details: ``{variant: details JSON}`` (may lack variants).
        figures: ``{title: relative path}`` of the PNGs written.
        curves: training-loss curves found (their absence is stated, not hidden).
        fronts: ``{"size": [...], "latency": [...]}`` Pareto-optimal variants.
    """
    names = sorted(variants)
    first = variants[names[0]]
    metric = first["primary_metric"]
    base = variants.get(BASELINE)
    lines = [f"# Model card: {task}", "",
             "Every number below was measured by this run's evaluate stage on the validation split "
             f"(CPU timing with {first.get('threads', first.get('latency_threads', '?'))} thread(s), batch 1 "
             f"and batch {first.get('large_batch_size', first.get('latency_batch_size', '?'))}, each variant "
             f"timed interleaved with `{BASELINE}` in the same process; CUDA: "
             f"{first.get('cuda_device', 'none')}; task metrics in fp32 on {_eval_devices(variants)}). "
             "'-' means not measured.", "",
             "## Variants", "", "| variant | what it is |", "|---|---|"]
    lines += [f"| {n} | {_what(details.get(n, {}))} |" for n in names]
    header = [metric, f"{metric} vs {BASELINE}", *(h for h, _, _ in CARD_COLUMNS)]
    lines += ["", "## Results", "", "| variant | " + " | ".join(header) + " |", "|---" * (len(header) + 1) + "|"]
    for n in names:
        m = card_values(variants[n])
        delta = m[metric] - base[metric] if base is not None else None
        cells = [fmt(m[metric], "{:.4f}"), fmt(delta, "{:+.4f}")]
        cells += [fmt(m.get(k), spec) for _, k, spec in CARD_COLUMNS]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines += ["", f"Pareto-optimal ({metric} vs size): {', '.join(fronts['size'])}.",
              f"Pareto-optimal ({metric} vs CPU large-batch latency): {', '.join(fronts['latency'])}.", ""]
    if any("auc" in variants[n] for n in names):
        classes = sorted({k.split("_")[-1] for n in names for k in variants[n] if k.startswith("precision_")})
        header = ["accuracy", "macro F1", "AUC", *(f"{s} {c}" for c in classes for s in ("P", "R", "F1"))]
        lines += ["## Classification diagnostics", "", "| variant | " + " | ".join(header) + " |",
                  "|---" * (len(header) + 1) + "|"]
        for n in names:
            m = variants[n]
            cells = [fmt(m.get(k), "{:.4f}") for k in ("accuracy", "macro_f1", "auc")]
            cells += [fmt(m.get(f"{s}_{c}"), "{:.4f}") for c in classes for s in ("precision", "recall", "f1")]
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
        lines.append("")
    layered = {n: d["layers"] for n, d in sorted(details.items()) if d.get("layers")}
    if layered:
        depth = max(len(v) for v in layered.values())
        lines += ["## Per layer (sparsity / heads / FFN neurons)", "",
                  "| variant | " + " | ".join(f"layer {i}" for i in range(depth)) + " |", "|---" * (depth + 1) + "|"]
        for n, rows in layered.items():
            cells = [f"{r['sparsity']:.3f} / {r['heads']} / {r['ffn_neurons']}" for r in rows]
            lines.append(f"| {n} | " + " | ".join(cells + ["-"] * (depth - len(cells))) + " |")
        lines.append("")
    lines += ["## Figures", ""]
    lines += [f"![{title}]({path})" for title, path in figures.items()]
    if not curves:
        lines.append("No training logs were found under `metrics/train`, so no loss-curve figure is drawn.")
    lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------- per-task report
def _csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buf.getvalue())


def task_report(out: Path, task: str, variants: dict[str, dict], details: dict[str, dict],
                curves: dict[str, list], evals: dict[str, list] | None = None) -> dict[str, str]:
    """Write ``out/<task>/``: ``MODEL_CARD.md``, ``figures/*.png`` and ``data/*`` (the numbers behind each plot).

    Figures: metric-vs-size and metric-vs-latency Pareto plots, ROC comparison and confusion matrices
    (classification), training-loss and validation-metric curves (when logs exist), and ``paper_2x2.png``
    combining four panels.

    Returns:
        ``{figure title: path relative to out/<task>}``.
    """
    from pipeline.report import figures as fig  # local: matplotlib only where figures are drawn

    root = out / task
    metric = next(iter(variants.values()))["primary_metric"]
    by_size = {n: (m["size_bytes"] / 1e6, m[metric]) for n, m in variants.items()}
    by_latency = {n: (m["latency_ms_p50"], m[metric]) for n, m in variants.items()}
    fronts = {"size": pareto_front(by_size), "latency": pareto_front(by_latency)}
    _csv(root / "data" / "pareto.csv", ["variant", metric, "size_mb", "latency_ms_p50", "size_front", "latency_front"],
         [[n, variants[n][metric], by_size[n][0], by_latency[n][0], int(n in fronts["size"]),
           int(n in fronts["latency"])] for n in sorted(variants)])
    speedups = {n: m["speedup"] for n, m in variants.items() if "speedup" in m}
    _csv(root / "data" / "speedup.csv", ["variant", "speedup"], [[n, speedups[n]] for n in sorted(speedups)])
    figures: dict[str, str] = {}
    drawn = {
        "size": (f"{metric} vs size", fig.pareto_axes, (by_size, fronts["size"], "weights on disk (MB)", metric)),
        "latency": (f"{metric} vs latency", fig.pareto_axes,
                    (by_latency, fronts["latency"], "CPU latency p50, large batch (ms)", metric)),
    }
    for key, (title, draw, args) in drawn.items():
        fig.save(fig.single(draw, *args), root / "figures" / f"pareto_{key}.png")
        figures[title] = f"figures/pareto_{key}.png"
    rocs, matrices = {}, {}
    for n, d in sorted(details.items()):
        cls = d.get("classification") or {}
        if cls and len(cls["roc"]) == 1:  # binary: the positive-class curve
            (curve,) = cls["roc"].values()
            rocs[n] = {**curve, "auc": cls["auc"]}
        if cls:
            matrices[n] = cls["confusion"]
    if rocs:
        _csv(root / "data" / "roc.csv", ["variant", "fpr", "tpr"],
             [[n, f, t] for n, c in rocs.items() for f, t in zip(c["fpr"], c["tpr"])])
        fig.save(fig.single(fig.roc_axes, rocs), root / "figures" / "roc.png")
        figures["ROC curves"] = "figures/roc.png"
    if matrices:
        (root / "data" / "confusion.json").write_text(json.dumps(matrices, indent=2, sort_keys=True) + "\n")
        fig.save(fig.confusion_figure(matrices), root / "figures" / "confusion.png")
        figures["confusion matrices"] = "figures/confusion.png"
    if curves:
        _csv(root / "data" / "loss.csv", ["run", "step", "loss"],
             [[n, r["step"], r["loss"]] for n, rows in sorted(curves.items()) for r in rows])
        fig.save(fig.single(fig.loss_axes, curves), root / "figures" / "loss.png")
        figures["training loss"] = "figures/loss.png"
    if evals:
        _csv(root / "data" / "eval_during_training.csv", ["run", "step", "value"],
             [[n, r["step"], r["loss"]] for n, rows in sorted(evals.items()) for r in rows])
        fig.save(fig.single(fig.loss_axes, evals, "validation metric"), root / "figures" / "eval_during_training.png")
        figures["validation metrics during training"] = "figures/eval_during_training.png"
    panels = [drawn["size"], drawn["latency"]]
    panels.append(("ROC curves", fig.roc_axes, (rocs,)) if rocs else
                  ("non-zero parameters", fig.bar_axes, ({n: m["nonzero_params"] for n, m in variants.items()},
                                                         "non-zero parameters")))
    panels.append(("training loss", fig.loss_axes, (curves,)) if curves else
                  (f"CPU speedup vs {BASELINE}", fig.bar_axes, (speedups, "speedup (x)", 1.0)))
    fig.save(fig.grid_2x2(panels), root / "figures" / "paper_2x2.png")
    figures["combined 2x2 (paper)"] = "figures/paper_2x2.png"
    (root / "MODEL_CARD.md").write_text(model_card(task, variants, details, figures, curves, fronts))
    return figures
