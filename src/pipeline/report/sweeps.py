"""The sweep view: the task's primary metric against the encoder weights that remain, per pruning method, with
and without distillation (the "metric by remaining weights" comparison of Sanh et al. 2020, *Movement Pruning*,
and the SMP study built on it).

Every pruned (``prune-<method>[-<value>]``) and distilled (``distill-<method>[-<value>]``) variant is a point;
the sweep points of ``prune.sweep`` give a method several. Remaining weights = non-zero encoder parameters of
the variant (attention and FFN blocks of every layer: weights, biases, LayerNorms) / encoder parameters of the
dense baseline ``finetune``, both as the evaluate stage counted them from the stored weights (so removed heads
and neurons count as removed). Nothing is estimated: a variant without those counts has no point.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from pipeline.report.plotdata import write_csv
from pipeline.report.tables import BASELINE, cells, markdown_table, measured, primary_metric

ENCODER = ("attention", "ffn")
"""The components (``pipeline.evaluation.facts``) that make up the encoder's layers."""
VARIANT = re.compile(r"^(?P<kind>prune|distill)-(?P<method>\w+)(?:-(?P<point>.+))?$")
"""``prune-<method>``, ``distill-<method>`` and a sweep point's ``...-<method>-<value>``."""


def encoder_params(row: pd.Series, kind: str) -> float | None:
    """``params`` or ``nonzero`` (``kind``) summed over :data:`ENCODER`; None when a count is missing."""
    values = [row.get(f"{kind}_{c}") for c in ENCODER]
    return float(sum(values)) if all(measured(v) for v in values) else None


def sweep_frame(variants: pd.DataFrame) -> pd.DataFrame:
    """One row per pruned or distilled variant with a measured point, and the dense baseline.

    Args:
        variants: flat metrics, a row per variant (:func:`pipeline.report.collect.collect`): ``primary_metric``,
            the metric, ``params_<component>`` and ``nonzero_<component>``.

    Returns:
        columns ``variant``, ``method`` (``finetune`` for the baseline), ``distilled``, ``point`` (the swept
        value as the variant name spells it, empty for a method's own branch), ``remaining_weights`` (fraction,
        1.0 for the baseline) and the metric; the baseline first, then by method, distillation and decreasing
        remaining weights.
        Empty without a baseline with encoder counts (there is no denominator then).
    """
    metric = primary_metric(variants)
    columns = ["variant", "method", "distilled", "point", "remaining_weights", metric]
    dense = encoder_params(variants.loc[BASELINE], "params") if BASELINE in variants.index else None
    if not dense:
        return pd.DataFrame(columns=columns)
    rows = [{"variant": BASELINE, "method": BASELINE, "distilled": False, "point": "", "remaining_weights": 1.0,
             metric: variants.loc[BASELINE, metric]}]
    for name, row in variants.iterrows():
        match, nonzero = VARIANT.match(str(name)), encoder_params(row, "nonzero")
        if match and nonzero is not None and measured(row.get(metric)):
            rows.append({"variant": name, "method": match["method"], "distilled": match["kind"] == "distill",
                         "point": match["point"] or "", "remaining_weights": nonzero / dense, metric: row[metric]})
    points = pd.DataFrame(rows[1:], columns=columns).sort_values(["method", "distilled", "remaining_weights"],
                                                                 ascending=[True, True, False])
    return pd.concat([pd.DataFrame(rows[:1], columns=columns), points], ignore_index=True)


def sweep_markdown(task: str, table: pd.DataFrame) -> str:
    """A markdown page: the sweep table of one task (measured values only)."""
    metric = table.columns[-1]
    text = cells(table.set_index("variant"), (("method", "method", "{}"), ("distilled", "distilled", "{}"),
                                               ("sweep value", "point", "{}"),
                                               ("remaining weights", "remaining_weights", "{:.1%}"),
                                               (metric, metric, "{:.4g}")))
    lines = [f"# {task}: {metric} by remaining encoder weights", "",
             f"Remaining weights: non-zero encoder parameters / those of `{BASELINE}` (attention and FFN blocks), "
             "counted from the stored weights by the evaluate stage. Plot: `figures/sweeps.png`, data: "
             "`data/sweeps.csv`.", ""]
    return "\n".join(lines + markdown_table(text) + [""])


def sweep_axes(ax, table: pd.DataFrame) -> None:
    """The metric against remaining weights (%, decreasing to the right): a line per method, solid after
    distillation and dashed without, the baseline as a black star."""
    metric = table.columns[-1]
    base = table[table["method"] == BASELINE]
    ax.scatter(100 * base["remaining_weights"], base[metric], marker="*", s=90, c="black", zorder=4, label=BASELINE)
    colors = {}
    for (method, distilled), group in table[table["method"] != BASELINE].groupby(["method", "distilled"]):
        color = colors.setdefault(method, f"C{len(colors) % 10}")
        ax.plot(100 * group["remaining_weights"], group[metric], marker="o", ms=4, c=color,
                ls="-" if distilled else "--", label=f"{method}{' + KD' if distilled else ''}")
    ax.set_xlim(105, 0)  # remaining weights shrink to the right
    ax.set_xlabel("remaining encoder weights (%)")
    ax.set_ylabel(metric)
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)


def sweep_report(root: Path, task: str, variants: pd.DataFrame) -> pd.DataFrame:
    """Write ``root/data/sweeps.csv``, ``root/figures/sweeps.png`` and ``root/sweeps.md`` for one task (nothing
    when there is no baseline or no pruned variant with a measured point); returns the table."""
    table = sweep_frame(variants)
    if (table["method"] != BASELINE).sum() == 0:
        return table
    from pipeline.report import figures  # local: matplotlib only where figures are drawn

    write_csv(table, root / "data" / "sweeps.csv")
    figures.save(figures.single(sweep_axes, table), root / "figures" / "sweeps.png")
    (root / "sweeps.md").write_text(sweep_markdown(task, table))
    return table
