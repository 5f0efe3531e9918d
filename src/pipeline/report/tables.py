"""The summary table of every variant against the fine-tuned baseline, and Pareto fronts."""

from __future__ import annotations

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


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """Names on the Pareto frontier of ``{name: (cost, quality)}``: lower cost and higher quality are better.

    A point is on the frontier when no other point is at least as good in both and better in one.

    Returns:
        frontier names sorted by increasing cost.
    """
    front = []
    for name, (cost, quality) in points.items():
        dominated = any(c <= cost and q >= quality and (c < cost or q > quality)
                        for other, (c, q) in points.items() if other != name)
        if not dominated:
            front.append(name)
    return sorted(front, key=lambda n: (points[n][0], -points[n][1]))


def summarize(results: dict[str, dict[str, dict]]) -> dict[str, list[dict]]:
    """Rows per task with ratios against the fine-tuned baseline when it was evaluated.

    Each row: variant, metric name/value, size, parameter counts, latency, and (relative to the baseline)
    the metric difference, size ratio (baseline / variant) and speedup. The speedup is the one the evaluate
    stage measured interleaved with the baseline in one process (``speedup``) when present, else the ratio
    of the two stored latencies.
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
            if "speedup" in m:
                row["speedup"] = m["speedup"]
            if base is not None:
                row["vs_baseline"] = m[name] - base[name]
                row["size_ratio"] = base["size_bytes"] / m["size_bytes"]
                row.setdefault("speedup", base["latency_ms_p50"] / m["latency_ms_p50"])
            rows.append(row)
        table[task] = rows
    return table


def markdown(table: dict[str, list[dict]]) -> str:
    """A markdown page with one table per task (only measured values; missing ones shown as '-')."""
    lines = ["# Compression summary", "", "All numbers are measured by the evaluate stage of this run.", ""]
    for task, rows in table.items():
        lines += [f"## {task}", "", f"Model card: [{task}/MODEL_CARD.md]({task}/MODEL_CARD.md)", ""]
        lines.append("| variant | " + " | ".join(c for c, _ in COLUMNS) + " |")
        lines.append("|---" * (len(COLUMNS) + 1) + "|")
        for row in rows:
            cells = [fmt.format(row[c]) if c in row else "-" for c, fmt in COLUMNS]
            cells[0] = f"{row['metric_name']} {cells[0]}"
            lines.append(f"| {row['variant']} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
