"""Report: model cards carry exactly the measured numbers, figures are valid PNGs, Pareto frontiers are right."""

import json
import shutil

import pandas as pd
import pytest
import yaml
from PIL import Image

from evaluation_files import make_inputs, report_argv, write_evaluation
from tools.code_deps import ROOT

from pipeline.report.collect import frame
from pipeline.report.pareto import pareto
from pipeline.report.tables import markdown, pareto_front, records, summary
from test_stage_errors import run_stage

# Hand-made measurements of three classification variants and two QA variants.
CLS = {
    "finetune": dict(accuracy=0.875, size_bytes=4_000_000, dense_fp32_bytes=4_000_100, params=1_000_000,
                     nonzero_params=990_000, sparsity=0.01, heads_total=8, latency_ms_p50=10.0, speedup=1.0,
                     cpu_bs1_p50_ms=1.25, cpu_bs1_speedup=0.98, cpu_large_p50_ms=10.0, cpu_large_speedup=1.0,
                     cpu_large_seq_per_s=3200.0, auc=0.9312, macro_f1=0.8712, precision_0=0.9, recall_0=0.85,
                     f1_0=0.8743, precision_1=0.8512, recall_1=0.9011, f1_1=0.8754),
    "prune-heads": dict(accuracy=0.8125, size_bytes=3_000_000, dense_fp32_bytes=3_000_100, params=750_000,
                        nonzero_params=745_000, sparsity=0.0067, heads_total=4, latency_ms_p50=6.5, speedup=1.5385,
                        cpu_bs1_p50_ms=0.95, cpu_bs1_speedup=1.3, cpu_large_p50_ms=6.5, cpu_large_speedup=1.5385,
                        cpu_large_seq_per_s=4923.1, auc=0.8801, macro_f1=0.81, precision_0=0.8, recall_0=0.83,
                        f1_0=0.8147, precision_1=0.825, recall_1=0.795, f1_1=0.8097),
    "prune-magnitude": dict(accuracy=0.80, size_bytes=3_500_000, dense_fp32_bytes=4_000_100, params=1_000_000,
                            nonzero_params=400_000, sparsity=0.6, heads_total=8, latency_ms_p50=10.5,
                            speedup=0.9524, cpu_bs1_p50_ms=1.3, cpu_bs1_speedup=0.96, cpu_large_p50_ms=10.5,
                            cpu_large_speedup=0.9524, cpu_large_seq_per_s=3047.6, auc=0.85, macro_f1=0.79,
                            precision_0=0.78, recall_0=0.81, f1_0=0.7947, precision_1=0.8, recall_1=0.77,
                            f1_1=0.7847),
}
QA = {
    "finetune": dict(f1=55.5, exact_match=40.25, size_bytes=4_200_000, params=1_050_000, nonzero_params=1_040_000,
                     latency_ms_p50=12.0, speedup=1.0, eval_device="cuda"),
    "quantize": dict(f1=54.75, exact_match=39.5, size_bytes=1_100_000, params=1_050_000, nonzero_params=1_039_000,
                     latency_ms_p50=7.25, speedup=1.6552, eval_device="cpu"),
}


PREPARE = {"cls": {"train": {"rows": 3000, "bad_rows_dropped": 0}, "validation": {"rows": 500, "bad_rows_dropped": 2}},
           "qa": {"train": {"rows": 2000, "answers_fixed": 1}, "validation": {"rows": 400, "answers_fixed": 0}}}


@pytest.fixture(autouse=True)
def _workdir(tmp_path, monkeypatch):
    """Every test runs in its temporary directory with the shipped params.yaml (the stage reads it)."""
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)


def _write_inputs(root, with_logs=True):
    for task, variants, metric in (("cls", CLS, "accuracy"), ("qa", QA, "f1")):
        make_inputs(root, task, variants)  # the current pipeline's data and artifacts, which the lineage matches
        for name, m in variants.items():
            details = {"artifact": {"stage": name.split("-")[0], "format": "dense"},
                       "layers": [{"layer": 0, "sparsity": m.get("sparsity", 0.0), "heads": 4, "ffn_neurons": 64}]}
            if task == "cls":
                details["classification"] = {"confusion": [[7, 1], [1, 7]], "auc": m["auc"],
                                             "roc": {"1": {"fpr": [0.0, 0.25, 1.0], "tpr": [0.0, 0.75, 1.0]}}}
            write_evaluation(root, task, name, {"primary_metric": metric, **m}, details, split=False)
    (root / "metrics" / "train").mkdir(parents=True, exist_ok=True)
    (root / "metrics" / "prepare").mkdir(parents=True, exist_ok=True)
    for name, counts in PREPARE.items():  # as the prepare@<name> stages write them
        (root / "metrics" / "prepare" / f"{name}.json").write_text(json.dumps({name: counts}))
    if with_logs:
        for run, losses in (("finetune/cls", [0.7, 0.5, 0.3]), ("distill/cls-heads", [0.9, 0.6]),
                            ("pretrain/a", [5.0, 4.0])):
            path = root / "metrics" / "train" / run / "plots" / "metrics" / "train" / "loss.tsv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("step\tloss\n" + "".join(f"{i}\t{v}\n" for i, v in enumerate(losses)))
        _write_epochs(root / "metrics" / "train")


# Per-epoch logs as training writes them: (run, epoch_loss rows, {validation value: rows}); an undefined
# value leaves no row (macro_recall at step 20 here).
EPOCHS = (
    ("finetune/cls", [(10, 0.69), (20, 0.41)],
     {"accuracy": [(10, 0.6), (20, 0.8)], "val_loss": [(10, 0.66), (20, 0.45)],
      "macro_precision": [(10, 0.61), (20, 0.79)], "macro_recall": [(10, 0.58)], "macro_f1": [(10, 0.57), (20, 0.78)]}),
    ("distill/cls-heads", [(5, 0.3)], {"accuracy": [(5, 0.81)], "val_loss": [(5, 0.5)]}),
    ("finetune/qa", [(8, 2.1)], {"exact_match": [(8, 30.5)], "f1": [(8, 40.25)], "val_loss": [(8, 2.4)]}),
)


def _write_epochs(train):
    for run, losses, evals in EPOCHS:
        plots = train / run / "plots" / "metrics"
        for sub in ("eval", "train"):
            (plots / sub).mkdir(parents=True, exist_ok=True)
        (plots / "train" / "epoch_loss.tsv").write_text("step\tepoch_loss\n" + "".join(f"{s}\t{v}\n" for s, v in losses))
        for name, rows in evals.items():
            (plots / "eval" / f"{name}.tsv").write_text(f"step\t{name}\n" + "".join(f"{s}\t{v}\n" for s, v in rows))


def _run(root, capsys):
    return run_stage("report", report_argv(root, sorted({*CLS, *QA})), capsys)


def _row(card: str, variant: str) -> list[str]:
    """The cells after the first of the first table row of ``card`` that starts with ``variant``."""
    line = next(line for line in card.splitlines() if line.startswith(f"| {variant} | "))
    return [cell.strip() for cell in line.strip().strip("|").split("|")][1:]


def test_pareto_front_on_a_hand_made_set():
    points = {"a": (1.0, 0.70), "b": (2.0, 0.80), "c": (2.5, 0.75), "d": (3.0, 0.90), "e": (3.0, 0.85),
              "f": (0.5, 0.60), "g": (2.0, 0.80)}
    # c is dominated by b; e by d; b and g tie (neither dominates the other)
    assert pareto_front(points) == ["f", "a", "b", "g", "d"]
    assert pareto_front({"x": (1.0, 1.0)}) == ["x"]


def test_report_files_cards_and_figures(tmp_path, capsys):
    _write_inputs(tmp_path)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["report"]["cited"] = [{"task": "qa", "model": "BERT-base (uncased)", "metric": "F1 (SQuAD v1.1 dev)",
                                  "value": 88.5, "source": "Devlin et al. 2019, Table 2"}]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    code, err = _run(tmp_path, capsys)
    assert code == 0, err
    reports = tmp_path / "reports"
    for task in ("cls", "qa"):
        for png in ("pareto_size", "pareto_speedup", "key_metrics", "loss_per_epoch", "metric_per_epoch", "paper_2x2"):
            with Image.open(reports / task / "figures" / f"{png}.png") as im:
                im.verify()
                assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 200
    for png in ("roc", "confusion", "loss", "precision_recall_f1"):
        with Image.open(reports / "cls" / "figures" / f"{png}.png") as im:
            im.verify()
    for png in ("roc", "confusion", "precision_recall_f1", "loss"):  # no classes; no per-step QA log
        assert not (reports / "qa" / "figures" / f"{png}.png").exists()
    card = (reports / "cls" / "MODEL_CARD.md").read_text()
    # the results row holds exactly the inputs: metric, delta vs finetune, size, params, ..., heads
    m = CLS["prune-heads"]
    assert _row(card.split("## Results")[1], "prune-heads")[:8] == ["0.8125", "-0.0625", "3.000", "3.000", "750,000",
                                                                    "745,000", "0.007", "4"]
    speed = _row(card.split("## Size, speed and memory")[1], "prune-heads")
    assert speed[:3] == ["3.000", "-", f"{m['cpu_bs1_p50_ms']:.3f}"] and "1.54x" in speed and "1.30x" in speed
    diag = _row(card.split("## Classification diagnostics")[1], "prune-heads")
    assert diag[:3] == ["0.8125", "0.8100", "0.8801"]
    assert "Pareto-optimal (accuracy vs size): prune-heads, finetune." in card
    assert "Pareto-optimal (accuracy vs interleaved speed-up, ties within the p10-p90 spread): prune-heads, " \
           "finetune." in card
    for png in ("loss", "loss_per_epoch", "metric_per_epoch", "precision_recall_f1", "key_metrics", "roc"):
        assert f"figures/{png}.png" in card
    assert "No training logs" not in card
    # the deployment choice: within 1 point (0.01) of finetune only finetune itself; QA was timed on no device
    deploy = json.loads((reports / "deploy.json").read_text())
    assert [(c["device"], c["variant"], c["loads"]) for c in deploy["choices"]["cls"]] == [
        ("cpu", "finetune", "transformers")] and deploy["choices"]["qa"] == []
    assert "### cls on cpu: `finetune`" in (reports / "summary.md").read_text() and "## Deployment choice" in card
    pareto = (reports / "cls" / "data" / "pareto.csv").read_text().splitlines()
    assert pareto[0] == ("variant,accuracy,size_mb,speedup,speedup_p10,speedup_p90,latency_ms_p50,size_front,"
                         "speedup_front")
    assert "prune-magnitude,0.8,3.5,0.9524,0.9524,0.9524,10.5,0,0" in pareto  # no recorded spread: zero width
    loss = (reports / "cls" / "data" / "loss.csv").read_text().splitlines()
    # pretrain/a is not a cls run; distill/cls-heads made no reported variant (its curve would mix in another model)
    assert loss[1:] == ["finetune/cls,0.0,0.7", "finetune/cls,1.0,0.5", "finetune/cls,2.0,0.3"]
    evals = pd.read_csv(reports / "cls" / "data" / "eval_during_training.csv")
    assert evals.query("run == 'finetune/cls accuracy'")["value"].tolist() == [0.6, 0.8]
    assert set(evals["run"].str.split(" ").str[0]) == {"finetune/cls"}
    epochs = pd.read_csv(reports / "cls" / "data" / "epochs.csv")
    assert epochs[["run", "variant", "epoch", "step", "train_loss", "val_loss"]].values.tolist() == [
        ["finetune/cls", "finetune", 1, 10, 0.69, 0.66], ["finetune/cls", "finetune", 2, 20, 0.41, 0.45]]
    assert "Data source: `synthetic` (classification), generated with seed 0. Tokenizer: `synthetic`." in card
    assert _row(card.split("## Data")[1], "validation") == ["500", "2"]
    assert _row(card.split("## Per epoch")[1], "finetune/cls")[:4] == ["1", "10", "0.6900", "0.6600"]
    qa_card = (reports / "qa" / "MODEL_CARD.md").read_text()
    assert _row(qa_card.split("## Results")[1], "quantize")[:3] == ["54.7500", "-0.7500", "1.100"]
    assert _row(qa_card.split("## Task metrics")[1], "quantize") == ["39.5000", "54.7500"]  # exact match and F1
    cited = qa_card.split("## Published reference numbers (cited, not measured)")[1].split("## ")[0]
    assert _row(cited, "BERT-base (uncased)") == ["F1 (SQuAD v1.1 dev)", "88.5", "Devlin et al. 2019, Table 2"]
    assert qa_card.count("88.5") == 1 and "88.5" not in card
    assert "task metrics in fp32 on cpu)" in card  # cls metrics carry no eval_device: computed on the CPU
    assert "task metrics in fp32 on cpu (quantize), cuda (finetune))" in qa_card
    summary = json.loads((reports / "summary.json").read_text())
    assert {r["variant"] for r in summary["cls"]} == set(CLS)
    heads = next(r for r in summary["cls"] if r["variant"] == "prune-heads")
    assert heads == {"variant": "prune-heads", "metric_name": "accuracy", "metric": 0.8125, "vs_baseline": -0.0625,
                     "size_mb": 3.0, "size_ratio": pytest.approx(4 / 3), "params": 750_000, "nonzero_params": 745_000,
                     "latency_ms_p50": 6.5, "speedup": 1.5385}
    assert isinstance(heads["params"], int)
    md = (reports / "summary.md").read_text()
    assert "| prune-heads | accuracy 0.8125 | -0.0625 | 3.000 | 1.33x | 750,000 | 745,000 | - | 6.50 | 1.54x |" in md


def test_without_training_logs_no_loss_figure_and_the_card_says_so(tmp_path, capsys):
    _write_inputs(tmp_path, with_logs=False)
    code, err = _run(tmp_path, capsys)
    assert code == 0, err
    assert not (tmp_path / "reports" / "cls" / "figures" / "loss.png").exists()
    assert "No training logs were found" in (tmp_path / "reports" / "cls" / "MODEL_CARD.md").read_text()


def test_no_metrics_is_one_error_line_and_nothing_written(tmp_path, capsys):
    (tmp_path / "metrics" / "eval").mkdir(parents=True)
    code, err = _run(tmp_path, capsys)
    assert code == 2 and len(err) == 1 and "no evaluation metrics" in err[0]
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("points,expected", [({"a": (1, 1), "b": (1, 1)}, ["a", "b"]),
                                             ({"a": (1, 2), "b": (2, 1)}, ["a"])])
def test_pareto_ties_and_domination(points, expected):
    assert pareto_front(points) == expected


def _frame(variants: dict[str, dict], metric: str = "accuracy"):
    return frame([{"variant": n, "primary_metric": metric, **m} for n, m in variants.items()], index="variant")


def test_summary_deltas_ratios_and_speedup_from_latencies_when_not_measured():
    variants = _frame({"finetune": dict(accuracy=0.9, size_bytes=4_000_000, params=10, nonzero_params=10,
                                        latency_ms_p50=8.0),
                       "quantize": dict(accuracy=0.85, size_bytes=1_000_000, params=10, nonzero_params=9,
                                        latency_ms_p50=2.0),
                       "teacher": dict(accuracy=0.95, size_bytes=8_000_000, params=20, nonzero_params=20)})
    table = summary(variants)
    assert table.at["quantize", "vs_baseline"] == pytest.approx(-0.05)
    assert table.at["quantize", "size_ratio"] == 4.0 and table.at["teacher", "size_ratio"] == 0.5
    assert table.at["quantize", "speedup"] == 4.0  # 8 ms / 2 ms: no interleaved speedup was measured
    rows = {r["variant"]: r for r in records(table)}
    assert "latency_ms_p50" not in rows["teacher"] and "speedup" not in rows["teacher"]  # not measured: absent
    assert isinstance(rows["quantize"]["params"], int) and rows["quantize"]["nonzero_params"] == 9
    teacher = next(line for line in markdown({"cls": table}).splitlines() if line.startswith("| teacher |"))
    assert teacher == "| teacher | accuracy 0.9500 | +0.0500 | 8.000 | 0.50x | 20 | 20 | - | - | - |"


def test_summary_without_baseline_has_no_deltas():
    table = summary(_frame({"quantize": dict(accuracy=0.85, size_bytes=1_000_000, params=10, nonzero_params=9,
                                             latency_ms_p50=2.0, speedup=1.5)}))
    assert records(table) == [{"variant": "quantize", "metric_name": "accuracy", "metric": 0.85, "size_mb": 1.0,
                               "params": 10, "nonzero_params": 9, "latency_ms_p50": 2.0, "speedup": 1.5}]


def test_pareto_table_flags_the_fronts():
    table, fronts = pareto(_frame({n: dict(accuracy=CLS[n]["accuracy"], size_bytes=CLS[n]["size_bytes"],
                                           speedup=CLS[n]["speedup"]) for n in CLS}))
    assert fronts == {"size": ["prune-heads", "finetune"], "speedup": ["prune-heads", "finetune"]}
    assert table["size_front"].to_dict() == {"finetune": 1, "prune-heads": 1, "prune-magnitude": 0}


def test_unmeasured_values_are_dashes_and_the_json_stays_strict(tmp_path, capsys):
    _write_inputs(tmp_path)
    path = tmp_path / "metrics" / "eval" / "cls" / "prune-magnitude.json"
    data = json.loads(path.read_text())
    data.update(auc=float("nan"), speedup=float("inf"))  # e.g. a split with one class: no AUC
    path.write_text(json.dumps(data))  # NaN/Infinity literals, as Python's json writes them
    code, err = _run(tmp_path, capsys)
    assert code == 0, err

    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    summary = json.loads((tmp_path / "reports" / "summary.json").read_text(), parse_constant=refuse)
    row = next(r for r in summary["cls"] if r["variant"] == "prune-magnitude")
    assert row["speedup"] == pytest.approx(10.0 / 10.5)  # not measured: the ratio of the stored latencies
    card = (tmp_path / "reports" / "cls" / "MODEL_CARD.md").read_text()
    diag = _row(card.split("## Classification diagnostics")[1], "prune-magnitude")
    assert diag[:3] == ["0.8000", "0.7900", "-"]


def test_every_top_level_plot_reads_a_long_format_file_the_report_writes(tmp_path, capsys):
    """Each file a ``dvc.yaml`` plot reads from ``reports/`` is written, holds the plot's x and y fields and, for
    the templates that draw one series per variant, a ``variant`` column (and the confusion counts)."""
    from test_params import plot_definitions

    _write_inputs(tmp_path)
    code, err = _run(tmp_path, capsys)
    assert code == 0, err
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    specs = {name: spec for entry in dvc["plots"] if isinstance(entry, dict) for name, spec in entry.items()}
    checked = 0
    for name, d in plot_definitions().items():
        for file in (f for f in d["files"] if f.startswith("reports/")):
            path = tmp_path / file
            assert path.is_file(), f"{name}: the report does not write {file}"
            if path.suffix != ".csv":
                continue
            table = pd.read_csv(path)
            needed = {specs[name]["x"], specs[name]["y"][file]}
            needed |= {"variant"} if d["template"].endswith("by_variant") else set()
            needed |= {"count"} if d["template"] == "confusion_by_variant" else set()
            assert needed <= set(table.columns), f"{name}: {file} lacks {needed - set(table.columns)}"
            assert set(table["variant"]) == set(CLS if "/cls/" in file else QA), name
            checked += 1
    assert checked >= 8
    confusion = pd.read_csv(tmp_path / "reports" / "cls" / "data" / "confusion.csv")
    assert confusion.query("variant == 'prune-heads'")["count"].tolist() == [7, 1, 1, 7]
