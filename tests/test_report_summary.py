"""The summary of a run (issue 25 item 6): baseline first, one number format per column, quantization zeros
apart from pruned ones, and one line on what was left out and how to clear it (hand-made inputs)."""

from __future__ import annotations

import re

from pipeline.report.collect import LEFT_OUT_KINDS, LeftOut, frame, left_out_line
from pipeline.report.tables import markdown, records, summary


def _variants():
    """A fine-tuned baseline, a pruned variant and its int8 version (quantization added 2% zeros)."""
    rows = {"distill-heads": dict(accuracy=0.8406, nonzero_params=700, prunable_params=500,
                                  quantization_zero_fraction=0.0, pruned_sparsity=0.3),
            "finetune": dict(accuracy=0.85, nonzero_params=1000, prunable_params=500,
                             quantization_zero_fraction=0.0, pruned_sparsity=0.0),
            "quantize-distill-heads": dict(accuracy=0.85, nonzero_params=690, prunable_params=500,
                                           quantization_zero_fraction=0.02, pruned_sparsity=0.3)}
    return frame([{"variant": n, "primary_metric": "accuracy", "size_bytes": 1_000_000, "params": 1000,
                   "latency_ms_p50": 2.0, **m} for n, m in rows.items()], index="variant")


def _table_rows(text: str) -> dict[str, list[str]]:
    return {c[0]: c[1:] for line in text.splitlines() if line.startswith("| ") and "---" not in line
            for c in [[x.strip() for x in line.strip("|").split("|")]]}


def test_baseline_first_then_the_others_sorted():
    assert list(summary(_variants()).index) == ["finetune", "distill-heads", "quantize-distill-heads"]
    text = markdown({"cls": summary(_variants())})
    assert [r for r in _table_rows(text) if r != "variant"] == ["finetune", "distill-heads", "quantize-distill-heads"]


def test_one_number_format_per_column():
    rows = _table_rows(markdown({"cls": summary(_variants())}))
    header = rows.pop("variant")
    for column in ("metric", "vs_baseline"):
        cells = [r[header.index(column)] for r in rows.values()]
        decimals = {len(re.split(r"[.]", c)[-1]) for c in cells}
        assert decimals == {4}, cells  # -0.0094 and +0.0000, never -0.009400 beside +0
    assert rows["finetune"][header.index("vs_baseline")] == "+0.0000"
    assert rows["distill-heads"][header.index("vs_baseline")] == "-0.0094"


def test_quantization_zeros_are_not_counted_as_pruned():
    table = summary(_variants())
    # 690 stored non-zeros + 10 rounding zeros (0.02 of 500 prunable weights): the 700 the pruned model had
    assert table.at["quantize-distill-heads", "nonzero_params"] == table.at["distill-heads", "nonzero_params"] == 700
    assert table.at["quantize-distill-heads", "quantization_zeros"] == 10
    assert table.at["finetune", "quantization_zeros"] == 0
    row = next(r for r in records(table) if r["variant"] == "quantize-distill-heads")
    assert type(row["nonzero_params"]) is int and type(row["quantization_zeros"]) is int  # JSON-ready


def test_without_the_facts_quantization_zeros_are_not_measured():
    variants = _variants().drop(columns=["quantization_zero_fraction"])
    table = summary(variants)
    assert table.at["quantize-distill-heads", "nonzero_params"] == 690  # as stored: nothing to add back
    assert "quantization_zeros" not in records(table)[0]


def test_left_out_is_one_line_per_run_with_how_to_clear_it():
    left = [LeftOut("qa", v, "not a task of the current pipeline (dvc.yaml)", "task") for v in ("a", "b", "c")]
    left += [LeftOut("cls", "old", "not a variant of the current pipeline (dvc.yaml)", "variant"),
             LeftOut("cls", "prune-heads", "not evaluated (no metrics files)", "missing")]
    line = left_out_line(left, "left_out.md")
    assert "\n" not in line and line.startswith("Left out: 3 evaluation(s) of tasks not in dvc.yaml (qa; to clear: ")
    assert "1 evaluation(s) of variants not in dvc.yaml (cls;" in line and "1 current variant(s) not evaluated" in line
    assert "from other data" not in line and "[left_out.md](left_out.md)" in line
    assert left_out_line([], "left_out.md").startswith("Left out: nothing")
    assert [k for k, _, _ in LEFT_OUT_KINDS] == ["task", "variant", "missing", "inputs"]
