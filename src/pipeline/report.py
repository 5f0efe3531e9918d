"""The summary report: every evaluated variant side by side, from the measured metrics files only."""

from __future__ import annotations

import json
from pathlib import Path

BASELINE = "finetune"
COLUMNS = (
    ("metric", "{:.4g}"),
    ("vs_baseline", "{:+.4g}"),
    ("size_mb", "{:.3f}"),
    ("size_ratio", "{:.2f}x"),
    ("params", "{:,}"),
    ("nonzero_params", "{:,}"),
    ("latency_ms_p50", "{:.2f}"),
    ("speedup", "{:.2f}x"),
)


def collect(metrics_dir: str | Path) -> dict[str, dict[str, dict]]:
    """``{task: {variant: metrics}}`` from ``<metrics_dir>/<task>/<variant>.json`` (pretrain/merge excluded)."""
    out: dict[str, dict[str, dict]] = {}
    for path in sorted(Path(metrics_dir).glob("*/*.json")):
        data = json.loads(path.read_text())
        if "task" in data:
            out.setdefault(path.parent.name, {})[path.stem] = data
    return out


def summarize(results: dict[str, dict[str, dict]]) -> dict[str, list[dict]]:
    """Rows per task with ratios against the fine-tuned baseline when it was evaluated.

    Each row: variant, metric name/value, size, parameter counts, latency, and (relative to the baseline)
    the metric difference, size ratio (baseline / variant) and speedup (baseline latency / variant).
    """
    table: dict[str, list[dict]] = {}
    for task, variants in results.items():
        base = variants.get(BASELINE)
        rows = []
        for variant, m in sorted(variants.items()):
            name = m["primary_metric"]
            row = {
                "variant": variant,
                "metric_name": name,
                "metric": m[name],
                "size_mb": m["size_bytes"] / 1e6,
                "params": m["params"],
                "nonzero_params": m["nonzero_params"],
                "latency_ms_p50": m["latency_ms_p50"],
            }
            if base is not None:
                row["vs_baseline"] = m[name] - base[name]
                row["size_ratio"] = base["size_bytes"] / m["size_bytes"]
                row["speedup"] = base["latency_ms_p50"] / m["latency_ms_p50"]
            rows.append(row)
        table[task] = rows
    return table


def markdown(table: dict[str, list[dict]]) -> str:
    """A markdown page with one table per task (only measured values; missing ones shown as '-')."""
    lines = ["# Compression summary", "", "All numbers are measured by the evaluate stage of this run.", ""]
    for task, rows in table.items():
        lines += [f"## {task}", ""]
        lines.append("| variant | " + " | ".join(c for c, _ in COLUMNS) + " |")
        lines.append("|---" * (len(COLUMNS) + 1) + "|")
        for row in rows:
            cells = [fmt.format(row[c]) if c in row else "-" for c, fmt in COLUMNS]
            cells[0] = f"{row['metric_name']} {cells[0]}"
            lines.append(f"| {row['variant']} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
