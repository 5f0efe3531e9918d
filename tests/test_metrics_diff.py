"""`dvc metrics diff` between two git branches gives a readable row per variant (flat metrics files)."""

import json
import os
import re
import shutil
import subprocess

import pytest

ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
       "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
VARIANTS = ("finetune", "prune-heads", "quantize")


def sh(cwd, *cmd):
    return subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, check=True).stdout


needs_dvc = pytest.mark.skipif(shutil.which("dvc") is None or shutil.which("git") is None,
                               reason="needs dvc and git")


def dvc_repo(tmp_path):
    """A fresh git repo on branch ``main`` with DVC initialised, at ``tmp_path / "repo"``."""
    repo = tmp_path / "repo"
    repo.mkdir()
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "dvc", "init", "-q")
    return repo


def write_metrics(repo, accuracy: dict[str, float], speedup: dict[str, float]):
    for v in VARIANTS:
        path = repo / "metrics" / "eval" / "cls" / f"{v}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        # the shape the evaluate stage writes: flat scalars, strings included
        data = {"task": "cls", "variant": v, "format": "dense", "accuracy": accuracy[v], "speedup": speedup[v],
                "size_bytes": 1000}
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


@needs_dvc
def test_metrics_diff_between_branches_has_a_row_per_variant(tmp_path):
    repo = dvc_repo(tmp_path)
    (repo / "dvc.yaml").write_text("metrics:\n" + "".join(f"  - metrics/eval/cls/{v}.json\n" for v in VARIANTS))
    write_metrics(repo, {"finetune": 0.875, "prune-heads": 0.8125, "quantize": 0.86},
                  {"finetune": 1.0, "prune-heads": 1.5, "quantize": 1.25})
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "main")
    sh(repo, "git", "checkout", "-q", "-b", "feature")
    write_metrics(repo, {"finetune": 0.875, "prune-heads": 0.84375, "quantize": 0.85},
                  {"finetune": 1.0, "prune-heads": 1.75, "quantize": 1.25})
    sh(repo, "git", "commit", "-qam", "feature")

    out = sh(repo, "dvc", "metrics", "diff", "main", "feature")
    lines = out.splitlines()
    header = lines[0].split()
    assert header == ["Path", "Metric", "main", "feature", "Change"], out
    rows = {(p, m): rest for p, m, *rest in (ln.split() for ln in lines[1:])
            if p.startswith("metrics/")}
    # one readable row per changed metric per variant: old, new, change
    assert rows[("metrics/eval/cls/prune-heads.json", "accuracy")] == ["0.8125", "0.84375", "0.03125"]
    assert rows[("metrics/eval/cls/prune-heads.json", "speedup")] == ["1.5", "1.75", "0.25"]
    assert rows[("metrics/eval/cls/quantize.json", "accuracy")] == ["0.86", "0.85", "-0.01"]
    # --all lists unchanged metrics too, so every variant gets its rows
    everything = sh(repo, "dvc", "metrics", "diff", "--all", "main", "feature")
    for v in VARIANTS:
        assert re.search(rf"metrics/eval/cls/{v}\.json\s+accuracy\s", everything), everything
    # the markdown form is a table a PR comment can show
    md = sh(repo, "dvc", "metrics", "diff", "--md", "main", "feature").splitlines()
    assert md[0].replace(" ", "") == "|Path|Metric|main|feature|Change|"


@needs_dvc
def test_plot_data_renders_with_the_confusion_and_simple_templates(tmp_path):
    import numpy as np

    from pipeline.evaluate.diagnostics import classification_report
    from pipeline.evaluate.outputs import write_plot_data

    repo = dvc_repo(tmp_path)
    labels = np.array([0, 1, 1, 0, 1])
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.5], [0.2, 0.1], [0.0, 3.0]])
    layers = [{"layer": 0, "params": 10, "nonzero": 5, "sparsity": 0.5, "heads": 4, "ffn_neurons": 8}]
    write_plot_data(repo / "metrics/plots/cls/v", layers, classification_report(logits, labels), labels,
                    logits.argmax(1))
    (repo / "dvc.yaml").write_text(
        "plots:\n"
        "  - confusion: {template: confusion, x: predicted, y: {metrics/plots/cls/v/confusion.csv: actual}}\n"
        "  - roc: {template: simple, x: fpr, y: {metrics/plots/cls/v/roc.csv: tpr}}\n"
        "  - sparsity: {x: layer, y: {metrics/plots/cls/v/layers.csv: sparsity}}\n")
    shown = json.loads(sh(repo, "dvc", "plots", "show", "--json"))
    assert not shown.get("errors"), shown
    values = {k: v[0]["content"]["data"]["values"] for k, v in shown["data"].items()}
    assert [(r["actual"], r["predicted"]) for r in values["confusion"]] == [
        ("0", "0"), ("1", "1"), ("1", "0"), ("0", "0"), ("1", "1")]
    # class-1 margins: +3.0(+), +1.0(+), -0.1(-), -0.5(+), -2.0(-): one positive ranks below a negative
    points = [(float(r["fpr"]), round(float(r["tpr"]), 4)) for r in values["roc"]]
    assert points == [(0, 0), (0, 0.3333), (0, 0.6667), (0.5, 0.6667), (0.5, 1), (1, 1)]
    assert float(values["sparsity"][0]["sparsity"]) == 0.5
