"""End to end: several named tasks from files as distributed, and the GLUE table in the report.

Fixture files in the exact layouts GLUE's ``download_glue_data.py`` distributes (SST-2 and MNLI TSVs with their
headers, MNLI's two dev files), with generated sentences (GLUE's data cannot be downloaded here; MRPC's layout,
metrics and table row, SQuAD's JSON layout and a non-GLUE task left out of the table are unit-tested in
tests/test_data_sources.py and tests/test_multitask.py; the QA stages run end to end in the golden run). In a clean
copy on the golden run's tiny params (tests/golden.py) with its own DVC cache, so it runs beside the golden run
instead of after it: ``dvc repro`` of the evaluate stages (what they need and nothing else: no teacher, no
distillation), then ``dvc repro -s report``; the GLUE table is checked against the evaluate stage's files. A second
copy, sharing that cache, follows the SST-2 walkthrough of docs/real-models-and-data.md (profiles/tasks/sst2.yaml
applied with the same command) on the same files: the GLUE run's ``sst2`` task has the walkthrough's settings, so
every ``sst2`` stage of the walkthrough is restored from the GLUE run's run-cache, which checks that the same files
and settings give the same stages.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from golden import ENV, all_stages, commit_all, ran, restored, sh, tiny_copy, upstream
from tools.code_deps import ROOT
from pipeline.data import synthetic

pytestmark = pytest.mark.e2e

# Stages that read no task and no file under sources/: the walkthrough restores them from the GLUE run's
# run-cache (as it does tokenizer and prepare@corpus, which depend on sources/: both runs write the same files).
TASK_FREE = {"base", "pretrain@a", "pretrain@b", "merge"}

# Methods and variants of these runs: dvc.yaml's variants, then the quantized prune-heads (quantize.sources); no
# ONNX export (export.sources: []), which tests/test_export.py covers. Both runs reproduce the evaluate stages of
# these variants, then the report stage alone (`dvc repro report` would also train the teachers and students, whose
# curves the report reads: the golden run covers that).
METHODS = ["heads"]
VARIANTS = ["finetune", "prune-heads"]
QUANTIZED = "quantize-dynamic_int8-prune-heads"
EVALUATIONS = ("evaluate@", "evaluate-quantize@")  # the stages whose files the report and the checks read


def reproduce(repo: Path) -> str:
    """``dvc repro`` of every evaluate stage (and what they need), then of the report stage alone; both outputs."""
    evaluations = sorted(s for s in all_stages(repo) if s.startswith(EVALUATIONS))
    return sh(repo, "dvc", "repro", *evaluations) + sh(repo, "dvc", "repro", "-s", "report")


def needed(repo: Path) -> set[str]:
    """The stages :func:`reproduce` runs or restores: the evaluate stages, their upstream, and the report."""
    return upstream(repo, *sorted(s for s in all_stages(repo) if s.startswith(EVALUATIONS))) | {"report"}


def tsv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(map(str, r)) + "\n" for r in [header, *rows]))


def sentences(n: int, seed: int) -> list[dict]:
    return synthetic.generate_classification(n, seed)


def write_sst2(root: Path, train: int, dev: int) -> None:
    """``SST-2/``: ``train.tsv``/``dev.tsv`` (``sentence``, ``label``) and an unlabelled ``test.tsv``."""
    for name, n, seed in (("train", train, 1), ("dev", dev, 2)):
        tsv(root / f"{name}.tsv", ["sentence", "label"], [[r["sentence"], r["label"]] for r in sentences(n, seed)])
    tsv(root / "test.tsv", ["index", "sentence"], [[i, r["sentence"]] for i, r in enumerate(sentences(5, 3))])


MNLI_LABELS = ("entailment", "neutral", "contradiction")


def write_mnli(root: Path, train: int, dev: int) -> None:
    """``MNLI/``: ``train.tsv``, ``dev_matched.tsv``, ``dev_mismatched.tsv`` with MNLI's columns (parses, five
    annotator labels on the dev sets, ``gold_label``)."""
    parses = ["sentence1_binary_parse", "sentence2_binary_parse", "sentence1_parse", "sentence2_parse"]
    rng = random.Random(0)
    for name, n, seed in (("train", train, 6), ("dev_matched", dev, 7), ("dev_mismatched", dev, 8)):
        labels = ["label1"] if name == "train" else [f"label{k}" for k in range(1, 6)]
        rows = []
        for i, (x, y) in enumerate(zip(sentences(n, seed), sentences(n, seed + 10))):
            gold = MNLI_LABELS[(x["label"] + y["label"] + rng.randrange(2)) % 3]
            rows.append([i, 100 + i, f"{100 + i}e", "fiction", "( x )", "( y )", "(ROOT x)", "(ROOT y)",
                         x["sentence"], y["sentence"], *([gold] * len(labels)), gold])
        tsv(root / f"{name}.tsv", ["index", "promptID", "pairID", "genre", *parses, "sentence1", "sentence2",
                                   *labels, "gold_label"], rows)


ROWS = (160, 40)  # train and dev rows of every fixture file


def write_sources(repo: Path) -> None:
    """The three distributed layouts under ``repo/sources`` (what both runs of this module read)."""
    write_sst2(repo / "sources" / "SST-2", *ROWS)
    write_mnli(repo / "sources" / "MNLI", *ROWS)


SST2_PROFILE = yaml.safe_load((ROOT / "profiles" / "tasks" / "sst2.yaml").read_text())


def restrict(repo: Path) -> None:
    """One pruning method and the variants of :data:`VARIANTS` in the copy's dvc.yaml."""
    path = repo / "dvc.yaml"
    data = yaml.safe_load(path.read_text())
    for entry in data["vars"]:
        if "prune_methods" in entry:
            entry["prune_methods"] = METHODS
        if "variants" in entry:
            entry["variants"] = VARIANTS
    path.write_text(yaml.safe_dump(data, sort_keys=False))


SOURCES = {"sst2": ("SST-2", {"glue": "sst2"}), "mnli": ("MNLI", {"glue": "mnli", "num_labels": 3})}


def glue_tasks(params: dict) -> dict:
    """Params with the tasks ``cls``/``qa`` replaced by sst2 and mnli (GLUE TSVs) from ``sources/``, every row
    of the files kept; each task's settings are those of ``cls``."""
    like = {name: "cls" for name in SOURCES}
    for section in (params["tasks"], params["finetune"], params["teacher"], params["distill"]["train"]):
        old = dict(section)
        section.clear()
        section.update({name: dict(old[like[name]]) for name in SOURCES})
    datasets = params["prepare"]["datasets"]
    datasets.update({name: {"type": datasets[like[name]]["type"], "source": f"sources/{folder}", "train_size": 0,
                            "validation_size": 0, **({"glue": extra["glue"]} if extra else {})}
                     for name, (folder, extra) in SOURCES.items()})
    del datasets["cls"], datasets["qa"]
    for name, (_, extra) in SOURCES.items():
        params["tasks"][name].update(extra)
    # sst2 exactly as the SST-2 walkthrough's profile sets it (test_sst2_walkthrough_... restores these stages)
    profile = SST2_PROFILE
    datasets["sst2"] = profile["prepare"]["datasets"]["sst2"]
    for section in ("tasks", "finetune", "teacher"):
        params[section]["sst2"] = profile[section]["sst2"]
    params["distill"]["train"]["sst2"] = profile["distill"]["train"]["sst2"]
    return params


@pytest.fixture(scope="module")
def glue_repo(tmp_path_factory) -> Path:
    """A clean copy on the golden run's tiny params with its own DVC cache: it runs beside the golden run (the
    task-free stages it would restore from there take about a minute here), not after it."""
    repo = tiny_copy(tmp_path_factory.mktemp("glue") / "repo", None)
    write_sources(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())  # the tiny params
    params["export"]["sources"], params["quantize"]["sources"] = [], ["prune-heads"]
    (repo / "params.yaml").write_text(yaml.safe_dump(glue_tasks(params), sort_keys=False))
    restrict(repo)
    commit_all(repo, "glue tasks")
    (repo / "repro.log").write_text(reproduce(repo))
    return repo


def evals(repo: Path, task: str) -> dict[str, dict]:
    files = repo / "metrics" / "eval" / task
    return {v: json.loads((files / f"{v}.json").read_text()) for v in [*VARIANTS, QUANTIZED]}


def test_named_tasks_from_files_and_the_glue_table(glue_repo):
    repo = glue_repo
    log = (repo / "repro.log").read_text()
    expected = needed(repo)
    assert ran(log) | restored(log) == expected
    assert ran(log) == expected and TASK_FREE <= ran(log)
    assert not {s for s in ran(log) if s.startswith(("teacher@", "distill@"))}
    assert {"prepare@sst2", "prepare@mnli", "finetune@mnli",
            "evaluate-quantize@mnli-dynamic_int8-prune-heads"} <= ran(log)
    mnli = json.loads((repo / "metrics" / "prepare" / "mnli.json").read_text())["mnli"]
    assert (mnli["train"]["rows"], mnli["validation"]["rows"], mnli["validation_mismatched"]["rows"]) == (160, 40, 40)

    table = json.loads((repo / "reports" / "glue.json").read_text())
    assert [r["task"] for r in table["tasks"]] == ["sst2", "mnli"]  # the leaderboard's order
    assert table["variants"] == ["finetune", "prune-heads", QUANTIZED]
    assert table["omitted"] == []
    expected = {}  # the GLUE average recomputed from the evaluate stage's files
    for row in table["tasks"]:
        measured = evals(repo, row["task"])
        for variant in [*VARIANTS, QUANTIZED]:
            cell = row["scores"][variant]
            assert {m: cell[m] for m in row["metrics"]} == {m: measured[variant][m] for m in row["metrics"]}
            expected.setdefault(variant, []).append(sum(cell[m] for m in row["metrics"]) / len(row["metrics"]))
    assert table["tasks"][1]["metrics"] == ["accuracy", "accuracy_mismatched"]
    assert table["average"] == pytest.approx({v: sum(s) / 2 for v, s in expected.items()})

    text = (repo / "reports" / "glue.md").read_text()
    assert f"| task | metric | finetune | prune-heads | {QUANTIZED} |" in text
    for label in ("| sst2 (SST-2) | acc. |", "| mnli (MNLI-m/mm) | acc. matched/mismatched |"):
        assert label in text
    assert f"| GLUE average (2 tasks) |  | {100 * table['average']['finetune']:.1f} |" in text
    assert "[glue.md](glue.md)" in (repo / "reports" / "summary.md").read_text()


def test_sst2_walkthrough_params_on_sst2_layout_files(glue_repo, tmp_path):
    """The SST-2 walkthrough (docs/real-models-and-data.md): files in sources/SST-2, the task profile applied with
    its command, ``dvc repro``. The model and pretraining are the tiny ones of the golden run instead of MiniLM
    (the MiniLM profile has its own tests, and MiniLM stages take minutes each on these CPUs), and no ONNX export
    (as in the GLUE run). The files and the ``sst2`` settings are those of the GLUE run (``glue_repo``, built
    first), so every stage but the report is restored from the run-cache: the same inputs give the same stages."""
    repo = tiny_copy(tmp_path / "repo", glue_repo / ".dvc" / "cache")  # the GLUE run's cache
    write_sources(repo)
    subprocess.run([sys.executable, "profiles/apply.py", "profiles/tasks/sst2.yaml", "--write", "params.yaml"],
                   cwd=repo, env=ENV, check=True)
    plots = str(yaml.safe_load((repo / "dvc.yaml").read_text())["plots"])  # regenerated: the tasks changed
    assert "reports/sst2/" in plots and "reports/cls/" not in plots, plots
    profile = SST2_PROFILE
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["prepare"]["datasets"]["sst2"] == profile["prepare"]["datasets"]["sst2"]
    assert list(params["tasks"]) == ["sst2"] and params["finetune"]["sst2"] == profile["finetune"]["sst2"]
    params["export"]["sources"], params["quantize"]["sources"] = [], ["prune-heads"]  # as in the GLUE run
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    restrict(repo)
    commit_all(repo, "sst2 walkthrough")
    out = reproduce(repo)
    assert ran(out) | restored(out) == needed(repo)
    assert ran(out) == {"report"}, ran(out)  # prepare@sst2, finetune@sst2, ... all come from the GLUE run
    assert TASK_FREE | {"prepare@sst2", "finetune@sst2", "prune@sst2-heads", "quantize@sst2-dynamic_int8-prune-heads",
                        "evaluate@sst2-finetune"} <= restored(out)
    for name in ("prepare/sst2.json", "eval/sst2/finetune.json", f"eval/sst2/{QUANTIZED}.json"):
        assert (repo / "metrics" / name).read_bytes() == (glue_repo / "metrics" / name).read_bytes(), name
    train, dev = ROWS
    counts = json.loads((repo / "metrics" / "prepare" / "sst2.json").read_text())["sst2"]
    seen = {r["sentence"] for r in sentences(train, 1)}  # the leakage check counts dev sentences also in train
    dups = sum(r["sentence"] in seen for r in sentences(dev, 2))
    assert counts == {"train": {"rows": train, "bad_rows_dropped": 0, "leakage_dropped": 0},
                      "validation": {"rows": dev, "bad_rows_dropped": 0, "duplicates_of_train": dups}}
    table = json.loads((repo / "reports" / "glue.json").read_text())
    assert [(r["task"], r["name"]) for r in table["tasks"]] == [("sst2", "SST-2")] and table["omitted"] == []
    finetune = json.loads((repo / "metrics" / "eval" / "sst2" / "finetune.json").read_text())
    assert table["average"]["finetune"] == finetune["accuracy"] and finetune["glue"] == "sst2"
    assert "| sst2 (SST-2) | acc. |" in (repo / "reports" / "glue.md").read_text()
