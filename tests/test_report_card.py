"""Model cards: the full official metric set, the data they measured, training settings, cited numbers kept
apart from measured ones, the per-epoch table, split sparsity and memory columns (hand-made inputs)."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from tools.code_deps import ROOT
from pipeline.config import loader
from pipeline.core.errors import PipelineError
from pipeline.data.params import DataSource, PrepareParams
from pipeline.report.card import CardInputs, model_card
from pipeline.report.cited import CitedResult, ReportParams, check_cited
from pipeline.report.collect import frame
from pipeline.report.epochs import epoch_frame, run_variant
from pipeline.report.plotdata import layers_frame
from test_report import _row
from test_stage_errors import run_stage

FRONTS = {"size": ["quantize"], "speedup": ["quantize"]}
CITED = [CitedResult("qa", "BERT-base (uncased)", "F1 (SQuAD v1.1 dev)", 88.5, "Devlin et al. 2019, Table 2"),
         CitedResult("cls", "BERT-base (uncased)", "accuracy (SST-2 test)", 93.5, "Devlin et al. 2019, Table 1")]


def _variants(rows: dict[str, dict], metric: str):
    return frame([{"variant": n, "primary_metric": metric, "size_bytes": 1_000_000, "latency_ms_p50": 5.0, **m}
                  for n, m in rows.items()], index="variant")


def _card(variants, details=None, inputs=None):
    """The card of a QA task (primary metric f1) or a classification task, no figures."""
    details = details or {}
    task = "qa" if variants["primary_metric"].iloc[0] == "f1" else "cls"
    return model_card(task, variants, details, layers_frame(details), {}, FRONTS, inputs)


def _section(card: str, title: str) -> str:
    """The text of ``## title`` up to the next section."""
    return card.split(f"## {title}\n")[1].split("\n## ")[0]


def _header(section: str) -> str:
    """The first table line of a section: its header."""
    return next(line for line in section.splitlines() if line.startswith("|"))


def test_qa_card_shows_exact_match_and_f1():
    card = _card(_variants({"finetune": dict(f1=55.5, exact_match=40.25), "quantize": dict(f1=54.75, exact_match=39.5)},
                           "f1"))
    metrics = _section(card, "Task metrics (official set)")
    assert _header(metrics) == "| variant | exact_match | f1 |"
    assert _row(metrics, "quantize") == ["39.5000", "54.7500"]


def test_squad_v2_card_shows_the_whole_official_set():
    v2 = dict(exact=61.0, f1=64.5, total=400, HasAns_exact=50.0, HasAns_f1=57.0, HasAns_total=200, NoAns_exact=72.0,
              NoAns_f1=72.0, NoAns_total=200, best_exact=62.0, best_exact_thresh=-1.25, best_f1=65.0,
              best_f1_thresh=-0.5)
    metrics = _section(_card(_variants({"finetune": v2}, "f1")), "Task metrics (official set)")
    assert _header(metrics) == ("| variant | exact | f1 | total | HasAns_exact | HasAns_f1 | HasAns_total | NoAns_exact | NoAns_f1 "
                      "| NoAns_total | best_exact | best_exact_thresh | best_f1 | best_f1_thresh |")
    assert _row(metrics, "finetune") == ["61.0000", "64.5000", "400", "50.0000", "57.0000", "200", "72.0000",
                                         "72.0000", "200", "62.0000", "-1.2500", "65.0000", "-0.5000"]


def test_cited_numbers_stand_apart_labelled_and_only_on_their_task():
    variants = _variants({"finetune": dict(f1=55.5, exact_match=40.25)}, "f1")
    card = _card(variants, inputs=CardInputs(cited=CITED))
    cited = _section(card, "Published reference numbers (cited, not measured)")
    assert _row(cited, "BERT-base (uncased)") == ["F1 (SQuAD v1.1 dev)", "88.5", "Devlin et al. 2019, Table 2"]
    assert "value (cited)" in cited and "93.5" not in card  # the cls entry stays on the cls card
    for measured in ("Results", "Size, speed and memory", "Task metrics (official set)"):
        assert "88.5" not in _section(card, measured) and "BERT" not in _section(card, measured)
    assert "Published reference" not in _card(variants)  # nothing cited: no section


def test_cited_entries_are_checked():
    with pytest.raises(PipelineError, match=r"'report.cited\[1\].task' is 'cls', not an evaluated task \(qa\)"):
        check_cited(CITED, ["qa"])
    check_cited(CITED, ["cls", "qa"])
    raw = {"report": {"cited": [{"task": "qa", "model": "m", "metric": "f1", "value": 1.0, "source": " "}]}}
    with pytest.raises(PipelineError, match=r"'report.cited\[0\]': source must not be empty"):
        loader._convert(raw["report"], ReportParams, "report")
    raw["report"]["cited"][0].update(source="s", value="high")
    with pytest.raises(PipelineError, match=r"'report.cited\[0\].value' must be float"):
        loader._convert(raw["report"], ReportParams, "report")


def test_card_says_what_data_it_measured_and_how_variants_were_trained():
    prepare = PrepareParams(seed=3, tokenizer="bert-base-uncased",
                            datasets={"cls": DataSource(type="classification", source="hub:glue/sst2")})
    counts = {"train": {"rows": 67349, "bad_rows_dropped": 0}, "validation": {"rows": 872, "bad_rows_dropped": 1}}
    details = {
        "finetune": {"artifact": {"stage": "finetune", "params": {
            "task": {"type": "classification"},
            "train": {"epochs": 3.0, "batch_size": 32, "lr": 2e-05, "weight_decay": 0.01, "warmup_ratio": 0.1,
                      "precision": "fp32", "seed": 0, "grad_accum_steps": 1}}},
            "classification": {"per_class": {"support": [428, 444]}}},
        "prune-magnitude": {"artifact": {"stage": "prune", "params": {"task": {}, "magnitude": {"sparsity": 0.6,
                                                                                              "scope": "global"}}}},
        "distill-heads": {"artifact": {"stage": "distill", "params": {
            "task": {}, "kd": {"temperature": 2.0, "alpha": 0.5}, "train": {"epochs": 1.0, "batch_size": 16}}}},
    }
    variants = _variants({n: dict(accuracy=0.9) for n in details} | {"quantize": dict(accuracy=0.89)}, "accuracy")
    card = _card(variants, details, CardInputs(prepare=prepare, counts=counts))
    data = _section(card, "Data")
    assert "Data source: `hub:glue/sst2` (classification). Tokenizer: `bert-base-uncased`." in data
    assert _row(data, "validation") == ["872", "1"] and _row(data, "train") == ["67,349", "0"]
    assert _row(data, "0") == ["428", "0.491"] and _row(data, "1") == ["444", "0.509"]
    train = _section(card, "Training settings")
    assert _header(train) == ("| variant | epochs | batch size | grad accum | lr | weight decay | warmup "
                                     "| precision | seed | other settings |")
    assert _row(train, "finetune") == ["3.0", "32", "1", "2e-05", "0.01", "0.1", "fp32", "0", "-"]
    assert _row(train, "prune-magnitude") == ["-"] * 8 + ["magnitude.sparsity=0.6, magnitude.scope=global"]
    assert _row(train, "distill-heads")[:2] == ["1.0", "16"]
    assert _row(train, "distill-heads")[-1] == "kd.temperature=2.0, kd.alpha=0.5"
    assert _row(train, "quantize") == ["-"] * 9  # its details carry no params
    synthetic = PrepareParams(datasets={"cls": DataSource(type="classification", train_size=10, validation_size=5)})
    data = _section(_card(variants, {}, CardInputs(prepare=synthetic)), "Data")
    assert "`synthetic` (classification), generated with seed 0" in data
    assert "`metrics/prepare/` has no data set `cls`" in data and "label balance" not in data


def test_split_sparsity_and_memory_columns():
    old = _variants({"finetune": dict(accuracy=0.9, sparsity=0.26)}, "accuracy")
    results = _section(_card(old), "Results")
    assert "| sparsity |" in results and _row(results, "finetune")[6] == "0.260"
    memory = dict(cpu_bs1_peak_rss_mb=310.25, cpu_large_peak_rss_mb=402.5, cpu_bs1_forward_rss_mb=1.5,
                  cpu_large_forward_rss_mb=92.0)
    new = _variants({"finetune": dict(accuracy=0.9, sparsity=0.26, pruned_sparsity=0.0, **memory),
                     "quantize": dict(accuracy=0.89, sparsity=0.3, pruned_sparsity=0.05,
                                      quantization_zero_fraction=0.25)}, "accuracy")
    card = _card(new)
    results = _section(card, "Results")
    assert "| sparsity |" not in results and "| pruned sparsity | quantization zeros |" in results
    assert _row(results, "quantize")[6:8] == ["0.050", "0.25"] and _row(results, "finetune")[6:8] == ["0.000", "-"]
    speed = _section(card, "Size, speed and memory")
    header = [c.strip() for c in _header(speed).strip("|").split("|")]
    assert header[1] == "size MB" and header[-5:] == ["CPU bs1 peak RSS MB", "CPU large peak RSS MB",
                                                      "CPU bs1 forward RSS MB", "CPU large forward RSS MB",
                                                      "CUDA large max allocated MB"]
    assert _row(speed, "finetune")[-5:] == ["310.2", "402.5", "1.5", "92.0", "-"]
    assert _row(speed, "quantize")[-5:] == ["-"] * 5


def test_per_epoch_table_from_the_training_logs(tmp_path):
    from test_report import _write_epochs

    _write_epochs(tmp_path)
    epochs = epoch_frame(tmp_path, "cls")
    assert list(epochs.columns[:5]) == ["run", "variant", "epoch", "step", "train_loss"]
    variants = _variants({"finetune": dict(accuracy=0.9)}, "accuracy")
    table = _section(_card(variants, inputs=CardInputs(epochs=epochs)), "Per epoch (validation split, logged while "
                                                                        "training)")
    lines = [line for line in table.splitlines() if line.startswith("|")]
    assert lines[0] == "| run | epoch | step | train loss | val loss | accuracy | macro P | macro R | macro F1 |"
    assert lines[2:] == ["| distill/cls-heads | 1 | 5 | 0.3000 | 0.5000 | 0.8100 | - | - | - |",
                         "| finetune/cls | 1 | 10 | 0.6900 | 0.6600 | 0.6000 | 0.6100 | 0.5800 | 0.5700 |",
                         "| finetune/cls | 2 | 20 | 0.4100 | 0.4500 | 0.8000 | 0.7900 | - | 0.7800 |"]
    qa = epoch_frame(tmp_path, "qa")
    assert qa[["run", "exact_match", "f1", "val_loss"]].values.tolist() == [["finetune/qa", 30.5, 40.25, 2.4]]
    assert epoch_frame(tmp_path / "none", "cls").empty
    assert run_variant("prune/cls-gradual", "cls") == "prune-gradual" and run_variant("teacher/qa", "qa") == "teacher"


def test_stage_refuses_a_cited_number_for_an_unknown_task(tmp_path, monkeypatch, capsys):
    from test_report import _run, _write_inputs

    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["report"]["cited"] = [{"task": "mnli", "model": "BERT-base", "metric": "accuracy", "value": 84.6,
                                  "source": "Devlin et al. 2019, Table 1"}]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    _write_inputs(tmp_path, with_logs=False)
    code, err = _run(tmp_path, capsys)
    assert code == 2 and len(err) == 1 and "'report.cited[0].task' is 'mnli'" in err[0]
    assert not (tmp_path / "reports").exists()
    (tmp_path / "metrics" / "prepare" / "cls.json").write_text(json.dumps([1, 2]))
    params["report"]["cited"] = []
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    code, err = _run(tmp_path, capsys)
    assert code == 2 and len(err) == 1 and "cls.json: expected {data set: {split: counts}}" in err[0]
    assert not (tmp_path / "reports").exists()
