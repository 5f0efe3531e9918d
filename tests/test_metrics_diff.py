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


# Tiny hand-made long-format files, one per view, at the paths dvc.yaml's cls plots read.
LONG = {
    "reports/cls/data/pareto.csv": ["variant,accuracy,size_mb,speedup,speedup_p10,speedup_p90,latency_ms_p50,"
                                    "size_front,speedup_front", "finetune,0.875,4.0,1.0,0.9,1.1,10.0,1,1",
                                    "prune-heads,0.8125,3.0,1.5,1.4,1.6,6.5,1,1", "quantize,0.86,1.1,1.4,1.3,1.5,7.0,1,0"],
    "reports/cls/data/layers.csv": ["variant,layer,sparsity", "finetune,0,0.0", "finetune,1,0.0",
                                    "prune-heads,0,0.1", "prune-heads,1,0.2", "quantize,0,0.0", "quantize,1,0.0"],
    "reports/cls/data/roc.csv": ["variant,fpr,tpr", "finetune,0.0,0.0", "finetune,0.5,1.0", "finetune,1.0,1.0",
                                 "prune-heads,0.0,0.0", "prune-heads,1.0,1.0", "quantize,0.0,0.0", "quantize,1.0,1.0"],
    "reports/cls/data/confusion.csv": ["variant,actual,predicted,count"] + [
        f"{v},{a},{p},{n}" for v, counts in (("finetune", (7, 1, 1, 7)), ("prune-heads", (6, 2, 1, 7)),
                                             ("quantize", (7, 1, 2, 6)))
        for (a, p), n in zip(((0, 0), (0, 1), (1, 0), (1, 1)), counts)],
}


def series(content: dict) -> tuple[set[tuple], list[str]]:
    """The series a Vega-Lite spec draws: the distinct values, over its data, of the fields of its nominal
    grouping channels (colour, dash, shape, detail, facet row/column), and those fields (sorted)."""
    fields = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("color", "strokeDash", "shape", "detail", "row", "column") and isinstance(value, dict) \
                        and value.get("type", "nominal") == "nominal" and "field" in value:
                    fields.add(value["field"])
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk({k: v for k, v in content.items() if k != "data"})
    return {tuple(row[f] for f in sorted(fields)) for row in content["data"]["values"]}, sorted(fields)


@needs_dvc
def test_plot_templates_draw_one_series_per_variant_and_revision(tmp_path):
    """dvc.yaml's plots over long-format files render with the shipped templates: one line, point set or
    confusion matrix per variant, and per variant and revision in ``dvc plots diff``."""
    import yaml

    from tools.code_deps import ROOT

    repo = dvc_repo(tmp_path)
    shutil.copytree(ROOT / ".dvc" / "plots", repo / ".dvc" / "plots")
    plots = [e for e in yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"] if isinstance(e, dict)
             and set(next(iter(e.values())).get("y") or ["none"]) <= set(LONG)]  # the cls plots of these files
    templates = {next(iter(e.values()))["template"] for e in plots}
    assert templates == {"by_variant", "scatter_by_variant", "confusion_by_variant"}, templates
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"plots": plots}))
    for file, lines in LONG.items():
        (repo / file).parent.mkdir(parents=True, exist_ok=True)
        (repo / file).write_text("\n".join(lines) + "\n")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "main")
    shown = json.loads(sh(repo, "dvc", "plots", "show", "--json"))
    assert not shown.get("errors"), shown
    assert len(shown["data"]) == len(plots) >= 4
    for name, (plot,) in shown["data"].items():
        drawn, fields = series(plot["content"])
        assert fields == ["rev", "variant"], (name, fields)
        assert drawn == {("workspace", v) for v in VARIANTS}, (name, drawn)
    # a changed value on a branch: dvc plots diff main draws each variant once per revision
    (repo / "reports/cls/data/layers.csv").write_text("\n".join(LONG["reports/cls/data/layers.csv"])
                                                        .replace("prune-heads,1,0.2", "prune-heads,1,0.4") + "\n")
    sh(repo, "git", "checkout", "-qb", "feature")
    diffed = json.loads(sh(repo, "dvc", "plots", "diff", "main", "--json"))
    drawn, _ = series(diffed["data"]["sparsity-per-layer-cls"][0]["content"])
    assert drawn == {(rev, v) for rev in ("main", "workspace") for v in VARIANTS}
    values = diffed["data"]["sparsity-per-layer-cls"][0]["content"]["data"]["values"]
    assert {(r["rev"], r["sparsity"]) for r in values if r["variant"] == "prune-heads" and r["layer"] == "1"} == {
        ("main", "0.2"), ("workspace", "0.4")}
