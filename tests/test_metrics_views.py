"""The evaluate stage's three flat files as DVC sees them across two git branches, declared exactly as in
dvc.yaml: plain ``dvc metrics diff`` is the task view; ``--targets metrics/speed`` / ``metrics/facts`` the others.

Measured with DVC 3.67 before choosing the declarations: ``metrics:`` files all appear in plain ``dvc metrics
diff``; ``plots:`` (``cache: false``) and cached ``outs:`` do not, and ``--targets`` reads either. An uncached
plot is in git, but DVC draws any list in it (the lineage records became a "sha256 vs step" plot); a cached out
draws nothing, and ``--targets`` reads another revision's copy from the DVC cache or, when it is not cached
there (a fresh clone), from the default remote. Lists in a metrics file (the lineage) are skipped by
``metrics show/diff``.
"""

import json
import re
import sys

import yaml

from tools.code_deps import ROOT
from test_metrics_diff import dvc_repo, needs_dvc, sh

WRITER = '''
import json, sys
from pathlib import Path
task, variant = sys.argv[1:3]
values = json.loads(Path("values.json").read_text())[variant]
lineage = [{"role": "artifact", "path": f"models/{task}/{variant}", "sha256": values["hash"]}]
files = {"eval": {"accuracy": values["accuracy"], "format": "dense"},
         "facts": {"params": values["params"], "pruned_sparsity": values["pruned"]},
         "speed": {"latency_ms_p50": values["ms"], "cpu_large_peak_rss_mb": values["rss"]},
         "details": {"layers": [{"layer": 0, "sparsity": values["pruned"]}]}}
for kind, content in files.items():
    path = Path("metrics", kind, task, f"{variant}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"task": task, "variant": variant, "lineage": lineage, **content}))
Path("metrics", "predictions", task, variant).mkdir(parents=True, exist_ok=True)
Path("metrics", "predictions", task, variant, "predictions.json").write_text("{}")
'''


def _values(accuracy: float, ms: float, rss: float, pruned: float, run: str) -> dict:
    return {v: {"accuracy": accuracy, "params": 1000, "pruned": pruned, "ms": ms, "rss": rss, "hash": f"{run}-{v}"}
            for v in ("finetune", "quantize")}


def _stage() -> dict:
    """dvc.yaml's evaluate stage with its outputs declared as shipped, a small writer as its command."""
    shipped = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["evaluate"]
    declared = {k: shipped[k] for k in ("metrics", "plots", "outs") if k in shipped}
    return {"matrix": {"task": ["cls"], "variant": ["finetune", "quantize"]},
            "cmd": f"{sys.executable} write.py ${{item.task}} ${{item.variant}}", "deps": ["write.py", "values.json"],
            **declared}


def _rows(out: str) -> dict[tuple[str, str], list[str]]:
    return {(p, m): rest for p, m, *rest in (line.split() for line in out.splitlines()[1:]) if p.startswith("metrics/")}


@needs_dvc
def test_plain_diff_is_the_task_view_and_targets_give_facts_and_speed(tmp_path):
    repo = dvc_repo(tmp_path)
    sh(repo, "dvc", "remote", "add", "-d", "store", str(tmp_path / "store"))  # committed, as a project's remote
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"evaluate": _stage()}}))
    (repo / "write.py").write_text(WRITER)
    (repo / "values.json").write_text(json.dumps(_values(0.875, 10.0, 420.5, 0.5, "a")))
    sh(repo, "dvc", "repro", "-q")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "main")
    sh(repo, "git", "checkout", "-qb", "feature")
    (repo / "values.json").write_text(json.dumps(_values(0.75, 12.5, 380.25, 0.6, "b")))
    sh(repo, "dvc", "repro", "-q")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "feature")
    tracked = set(sh(repo, "git", "ls-files", "metrics").split())  # the task metrics in git, the rest DVC-cached
    assert "metrics/eval/cls/quantize.json" in tracked
    assert not any(f.startswith(f"metrics/{k}/cls/q") for k in ("facts", "speed", "details", "predictions")
                   for f in tracked)

    plain = _rows(sh(repo, "dvc", "metrics", "diff", "main", "feature"))
    assert plain == {(f"metrics/eval/cls/{v}.json", "accuracy"): ["0.875", "0.75", "-0.125"]
                     for v in ("finetune", "quantize")}  # the task view: no facts, speed, lineage hashes
    speed = _rows(sh(repo, "dvc", "metrics", "diff", "main", "feature", "--targets", "metrics/speed"))
    assert speed[("metrics/speed/cls/quantize.json", "latency_ms_p50")] == ["10.0", "12.5", "2.5"]
    assert speed[("metrics/speed/cls/quantize.json", "cpu_large_peak_rss_mb")] == ["420.5", "380.25", "-40.25"]
    assert {p for p, _ in speed} == {f"metrics/speed/cls/{v}.json" for v in ("finetune", "quantize")}
    facts = _rows(sh(repo, "dvc", "metrics", "diff", "main", "feature", "--targets", "metrics/facts"))
    assert facts[("metrics/facts/cls/finetune.json", "pruned_sparsity")] == ["0.5", "0.6", "0.1"]
    assert not any(m.startswith("lineage") for _, m in {**plain, **speed, **facts})
    shown = sh(repo, "dvc", "metrics", "show", "metrics/eval", "metrics/speed")
    assert re.search(r"metrics/speed/cls/finetune\.json", shown) and "lineage" not in shown
    assert json.loads(sh(repo, "dvc", "plots", "show", "--json")).get("data", {}) == {}  # nothing drawn

    # A colleague's fresh clone: nothing cached, yet DVC reads both revisions' files from the default remote.
    sh(repo, "dvc", "push", "-q", "--all-commits")
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    assert not (clone / ".dvc" / "cache").exists()
    assert _rows(sh(clone, "dvc", "metrics", "diff", "main", "feature", "--targets", "metrics/speed")) == speed
