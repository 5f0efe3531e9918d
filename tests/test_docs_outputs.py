"""Every metric key and output path the documentation (README.md, docs/*.md) names exists in a real run's
outputs (issue 25 item 9).

The real outputs: the embedded default's committed ``metrics/`` (eval, export, prepare, pretrain, merge and the
training logs), the paths of ``dvc.lock`` (the DVC-cached outputs of that run: facts, speed, details,
predictions, models, reports), the files and keys one evaluate stage run writes here (facts, speed, details: not
in git) and the files one report stage run writes (the ``reports/`` tree). A path's task, variant or data set
name (``sst2``, ``<task>``) is a wildcard: the docs may use a user's task as the example.

Checked: (1) each ``metrics/...`` or ``reports/...`` path in backticks matches a real file or directory;
(2) each metric-shaped name in backticks (:data:`METRIC_SHAPE`: ``cpu_*``, ``*_ms``, ``*_bytes``, ...) is a key of
some real output (or a param); (3) on a line that names exactly one metrics file kind (``metrics/eval/...``), every
key in backticks is a key of that kind's files (or a param).
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tools.code_deps import ROOT
from pipeline.report.card import TASK_METRICS
from test_evaluate import variants  # noqa: F401 (fixture)
from test_report import CLS, _run, _write_inputs
from test_stage_errors import cls_data, edit_params, run_stage, workdir  # noqa: F401 (fixtures)

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SPAN = re.compile(r"`([^`\n]+)`")
OUTPUT_PATH = re.compile(r"^(metrics|reports)/[\w<>{},.*$/-]*$")
METRIC_SHAPE = re.compile(r"^(cpu|cuda)_[a-z0-9_*]+$|^[a-z][a-z0-9_]*_(ms|p50|p90|mb|bytes|error|speedup|per_s|"
                          r"sparsity|fraction|params|total|dropped|fixed|rss|\*)$")
IDENTIFIER = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9*]+)+$")
# The metrics file kinds whose next path segment is a task (or data set) name, a wildcard here.
PER_TASK = ("eval", "facts", "speed", "details", "predictions", "export")
# Keys only a CUDA run writes (the cuda_* timings mirror the cpu_* ones, :func:`pipeline.evaluation.speed.cuda_speed`).
CUDA_ONLY = {"cuda_large_max_allocated_mb"}


def _spans() -> list[tuple[str, int, str, str]]:
    """``(doc, line number, line, span)`` of every backticked span outside fenced code blocks."""
    out = []
    for doc in DOCS:
        fenced = False
        for n, line in enumerate(doc.read_text().splitlines(), 1):
            fenced ^= line.lstrip().startswith("```")
            out += [(doc.name, n, line, s) for s in SPAN.findall(line)] if not fenced else []
    return out


def _keys(obj, out: set[str]) -> set[str]:
    """Every mapping key in ``obj``, recursively."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            out.add(str(key))
            _keys(value, out)
    elif isinstance(obj, list):
        for value in obj:
            _keys(value, out)
    return out


def _pattern(path: str) -> str:
    """A documented path as a glob: placeholders, task and data set names and ``{a,b}`` become ``*``."""
    path = re.sub(r"<[^>]*>|\$\{[^}]*\}|\{[^}]*\}", "*", path.rstrip("/"))
    parts = path.split("/")
    if parts[0] == "metrics" and len(parts) > 2 and parts[1] in PER_TASK:
        parts[2] = "*"
    elif parts[0] == "metrics" and len(parts) > 2 and parts[1] == "prepare":
        parts[2] = "*.json"
    elif parts[0] == "reports" and len(parts) > 2 and "." not in parts[1]:
        parts[1] = "*"
    return "/".join(parts)


_RUN: dict = {}  # the real run, measured once for the module's two checks (both only read it)


@pytest.fixture
def real_run(workdir, variants, cls_data, tmp_path_factory, capsys, monkeypatch):  # noqa: F811 (fixtures)
    """``(paths, keys by kind)`` of a real run: the committed metrics, dvc.lock's paths, one evaluate stage run
    (a quantized variant against its baseline) and one report stage run (hand-made measurements with the
    per-component counts that make the sweep view). Measured by the first test that asks, then reused."""
    if "run" not in _RUN:
        _RUN["run"] = _measure(workdir, variants, cls_data, tmp_path_factory, capsys, monkeypatch)
    return _RUN["run"]


def _measure(workdir, variants, cls_data, tmp_path_factory, capsys, monkeypatch):  # noqa: F811 (fixtures)
    paths, by_kind = set(), {}
    for name in subprocess.run(["git", "ls-files", "metrics"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.split():
        paths.add(name)
        kind = name.split("/")[1].removesuffix(".json")
        if name.endswith(".json"):
            _keys(json.loads((ROOT / name).read_text()), by_kind.setdefault(kind, set()))
        elif name.endswith(".tsv"):  # a dvclive log: the metric is the file name, plus its columns
            by_kind.setdefault(kind, set()).update([Path(name).stem, *(ROOT / name).read_text().split("\n")[0].split("\t")])
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
    paths |= {o["path"] for stage in lock.values() for o in stage.get("outs", [])}
    # memory: true, so the fresh-process RSS keys the docs name are written too (default false)
    edit_params(workdir, lambda d: d["evaluate"].update(latency_repeats=2, latency_warmup=1, memory=True))
    out = {kind: workdir / f"{kind}.json" for kind in ("facts", "speed", "details")}
    code, err = run_stage("evaluate", ["--task", "cls", "--baseline", str(variants[0]["finetune"]),
                                       *(a for k, p in out.items() for a in (f"--{k}", str(p))), "--predictions",
                                       "p", str(variants[0]["quantize"]), str(cls_data), "m.json"], capsys)
    assert code == 0, err
    for kind, path in out.items():
        _keys(json.loads(path.read_text()), by_kind.setdefault(kind, set()))
    reports = tmp_path_factory.mktemp("report")
    for name, row in CLS.items():
        kept = 1 - row["sparsity"]
        monkeypatch.setitem(CLS, name, {**row, "params_attention": 400, "nonzero_attention": round(400 * kept),
                                        "params_ffn": 600, "nonzero_ffn": round(600 * kept)})
    _write_inputs(reports)
    code, err = _run(reports, capsys)
    assert code == 0, err
    paths |= {str(p.relative_to(reports)) for p in (reports / "reports").rglob("*")}
    return paths, by_kind


def _found(path: str, paths: set[str]) -> bool:
    """Whether the documented ``path`` (:func:`_pattern`) is a real file or directory, or lies in a DVC-cached
    directory output whose files are not listed."""
    pattern = _pattern(path)
    return any(fnmatch.fnmatchcase(p, pattern) or fnmatch.fnmatchcase(p, pattern + "/*")
               or pattern.startswith(p + "/") and "." not in Path(p).name and p != "reports" for p in paths)


def _known(key: str, keys: set[str]) -> bool:
    return any(fnmatch.fnmatchcase(k, key) for k in keys)


@pytest.mark.slow  # an evaluate stage with memory runs in fresh processes
def test_every_documented_output_path_exists(real_run):
    paths, _ = real_run
    missing = [f"{doc}:{n}: {s}" for doc, n, _, s in _spans() if OUTPUT_PATH.match(s) and not _found(s, paths)]
    assert not missing, "documented paths no run writes:\n" + "\n".join(missing)


@pytest.mark.slow  # an evaluate stage with memory runs in fresh processes
def test_every_documented_metric_key_exists(real_run):
    _, by_kind = real_run
    params = _keys(yaml.safe_load((ROOT / "params.yaml").read_text()), set())
    # Task metrics of tasks the embedded default does not run (SQuAD v2's best_*): the official names the report reads.
    everything = set().union(*by_kind.values(), params, TASK_METRICS, CUDA_ONLY)
    everything |= {"cuda_" + k.removeprefix("cpu_") for k in everything if k.startswith("cpu_")}
    wrong = []
    for doc, n, line, span in _spans():
        if METRIC_SHAPE.match(span) and not _known(span, everything):
            wrong.append(f"{doc}:{n}: `{span}` is no key of any output")
        kinds = set(re.findall(r"`metrics/(\w+)/", line))
        if len(kinds) == 1 and IDENTIFIER.match(span) and (kind := kinds.pop()) in by_kind:
            if not _known(span, by_kind[kind] | params):
                wrong.append(f"{doc}:{n}: `{span}` is not in metrics/{kind}/ files")
    assert not wrong, "\n".join(wrong)


def test_the_checks_catch_a_wrong_key_and_a_wrong_path():
    """The two errors issue 25 found: a key under the wrong file and a key that no file holds."""
    assert _pattern("metrics/eval/sst2/<variant>.json") == "metrics/eval/*/*.json"
    assert not _found("metrics/eval/sst2/<variant>/size.json", {"metrics/eval/cls/finetune.json"})
    assert _found("metrics/eval/sst2/<variant>.json", {"metrics/eval/cls/finetune.json"})
    assert METRIC_SHAPE.match("cpu_bs1_latency_ms_p50") and not _known("cpu_bs1_latency_ms_p50", {"cpu_bs1_p50_ms"})
    assert _known("cpu_bs1_*", {"cpu_bs1_p50_ms"})
