"""The golden run: the tiny pipeline run once per test session, and cheap copies of it that share its DVC cache.

:func:`golden_run` copies the repository (as a clean clone has it), shrinks the embedded default with :func:`tiny`
and :func:`fewer_methods`, and runs ``dvc repro`` once, with ``cache.dir`` in ``.dvc/config.local`` pointing at a
cache directory shared by the whole session. Tests read that run and never change it. A test that changes
something works on :func:`work_copy` (a ``git clone`` of the golden run, same cache): ``dvc repro`` there restores
every stage whose command, deps and params are unchanged from DVC's run-cache ("is cached - skipping run") and
runs only the stages that differ. :func:`rerun_set` gives what ``dvc repro`` would run after a change, from
``dvc status`` and the DAG, without running it.

With pytest-xdist each worker would build its own session fixtures; :func:`shared_root` and a file lock let the
workers build the golden run once between them.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml

from clean_copy import ROOT, clean_copy

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "PYTHONPATH": str(ROOT / "src"),
    "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
}

# Pruning methods the end-to-end run compares: the one that changes shapes (and feeds quantization and export).
# The others run through the prune stage in unit tests: a method that trains while pruning and is stored
# compactly, then distilled with its zeros kept, in tests/test_prune_gradual.py.
E2E_METHODS = ["heads"]


def fewer_methods(dvc_yaml: Path, methods: list[str] = E2E_METHODS) -> None:
    """Restrict the prune/distill/evaluate matrices of a copied dvc.yaml to ``methods``."""
    data = yaml.safe_load(dvc_yaml.read_text())
    for entry in data["vars"]:
        if "prune_methods" in entry:
            entry["prune_methods"] = list(methods)
        if "variants" in entry:  # in place: the report stage's vars alias the same list
            kept = [v for v in entry["variants"] if not v.startswith(("prune-", "distill-"))]
            entry["variants"][:] = kept + [f"{kind}-{m}" for kind in ("prune", "distill") for m in methods]
    dvc_yaml.write_text(yaml.safe_dump(data, sort_keys=False))


def tiny(params: dict) -> dict:
    """Shrink the embedded default so the whole pipeline runs in about two minutes on 2 cores."""
    for name, ds in params["prepare"]["datasets"].items():
        ds["train_size"], ds["validation_size"] = (300, 60) if name != "corpus" else (400, 60)
    params["model"].update(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    params["pretrain"]["train"]["epochs"] = 1
    for task in params["tasks"]:
        params["finetune"][task]["epochs"] = 1
        params["teacher"][task]["arch"].update(hidden_size=48, num_hidden_layers=2, num_attention_heads=4,
                                               intermediate_size=96)
        params["teacher"][task]["train"]["epochs"] = 1
        params["distill"]["train"][task]["epochs"] = 1
    params["evaluate"]["latency_repeats"] = 3
    params["evaluate"]["memory"] = False  # measured by tests/test_memory.py; here it would cost minutes per run
    return params


def env_for(cwd: Path, base: dict | None = None) -> dict:
    """The environment of a command in a copy of the repository: that copy's own ``src`` on the path (the code
    DVC hashed as the stages' deps), not this checkout's."""
    env = dict(base or ENV)
    if (Path(cwd) / "src" / "pipeline").is_dir():
        env["PYTHONPATH"] = str(Path(cwd) / "src")
    return env


def sh(cwd: Path, *cmd: str, check: bool = True, env: dict | None = None) -> str:
    """Run ``cmd`` in ``cwd``; its stdout and stderr, or an AssertionError naming the command when it fails."""
    proc = subprocess.run(cmd, cwd=cwd, env=env_for(cwd, env), capture_output=True, text=True)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr


def ran(output: str) -> set[str]:
    """Stages that actually executed their command in a ``dvc repro`` output."""
    return set(re.findall(r"Running stage '([^']+)'", output))


def restored(output: str) -> set[str]:
    """Stages a ``dvc repro`` output restored from the run-cache instead of running them."""
    return set(re.findall(r"Stage '([^']+)' is cached - skipping run", output))


def all_stages(repo: Path) -> set[str]:
    """Every stage name as ``dvc repro`` prints it (run inside the repo: DVC's addressing is cwd-relative)."""
    return set(sh(repo, "dvc", "stage", "list", "--name-only").split())


def tree_hashes(root: Path, *dirs: str) -> dict[str, str]:
    """Hash of every file the project wrote under ``dirs`` of ``root``. DVC's own ``.gitignore`` files are left out:
    DVC appends their lines in the order it happened to run independent stages, so two clones may differ there."""
    from pipeline.core.files import file_hash

    return {str(p.relative_to(root)): file_hash(p) for d in dirs for p in sorted((root / d).rglob("*"))
            if p.is_file() and p.name != ".gitignore"}


def edit_yaml(path: Path, fn) -> None:
    """Apply ``fn`` to the YAML document at ``path`` in place (key order kept)."""
    data = yaml.safe_load(path.read_text())
    fn(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def set_param(repo: Path, dotted: str, value) -> None:
    """Set one dotted key of ``repo``'s params.yaml."""
    def assign(data: dict) -> None:
        *parents, last = dotted.split(".")
        for key in parents:
            data = data[key]
        data[last] = value

    edit_yaml(repo / "params.yaml", assign)


def share_cache(repo: Path, cache: Path) -> None:
    """Point ``repo``'s DVC cache (``.dvc/config.local``, which git ignores) at ``cache``."""
    (repo / ".dvc" / "config.local").write_text(f"[cache]\n    dir = {cache}\n")


def commit_all(repo: Path, message: str) -> None:
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", message)


def tiny_copy(dest: Path, cache: Path | None) -> Path:
    """A clean copy of the repository on :func:`tiny` params and :data:`E2E_METHODS`, a git repository with one
    commit; its DVC cache is ``cache`` when given (else its own)."""
    clean_copy(dest)
    edit_yaml(dest / "params.yaml", tiny)
    fewer_methods(dest / "dvc.yaml")
    sh(dest, "git", "init", "-q")
    commit_all(dest, "init")
    if cache is not None:
        share_cache(dest, cache)
    return dest


def golden_run(root: Path) -> Path:
    """Build the golden run under ``root`` (``root/repo``, cache ``root/cache``) unless it is there already.

    ``dvc repro``'s output is kept in ``first_repro.log``; outputs and lock are committed."""
    repo = root / "repo"
    if (root / "done").exists():
        return repo
    tiny_copy(repo, root / "cache")
    (repo / "first_repro.log").write_text(sh(repo, "dvc", "repro"))
    commit_all(repo, "first run")
    (root / "done").write_text("ok\n")
    return repo


def shared_root(tmp_path_factory) -> Path:
    """The session's base temporary directory, the same for every pytest-xdist worker."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def cache_of(repo: Path) -> Path:
    """The cache directory ``repo``'s ``.dvc/config.local`` names."""
    return Path(re.search(r"dir = (.+)", (repo / ".dvc" / "config.local").read_text()).group(1).strip())


def work_copy(golden: Path, dest: Path, checkout: bool = True) -> Path:
    """A ``git clone`` of the golden run at ``dest`` sharing its DVC cache; with ``checkout`` its outputs are
    checked out from that cache (no stage runs). Changes there never reach the golden run."""
    sh(dest.parent, "git", "clone", "-q", str(golden), str(dest))
    share_cache(dest, cache_of(golden))
    if checkout:
        sh(dest, "dvc", "checkout", "--quiet")
    return dest


def upstream(repo: Path, *stages: str) -> set[str]:
    """``stages`` and every stage they depend on, directly or not: what ``dvc repro <stages>`` runs or restores."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc:
        graph = dvc.index.graph  # an edge runs from a stage to a stage it depends on
        nodes = [s for s in graph if s.name in stages]
        assert len(nodes) == len(set(stages)), f"no such stage among {sorted(stages)}"
        return set(stages) | {s.name for node in nodes for s in nx.descendants(graph, node)}


def changed(repo: Path) -> set[str]:
    """The names of the stages ``dvc status`` lists as changed in ``repo`` (DVC's Python API, in this process: a
    ``dvc status`` process would spend about 1.5 s of its 4 s importing DVC)."""
    return {stage.name for stage in _stale(repo)[0]}


def rerun_set(repo: Path) -> set[str]:
    """Stages ``dvc repro`` would run now: those ``dvc status`` lists and everything downstream of them in the
    DAG (nothing runs)."""
    import networkx as nx

    stale, graph = _stale(repo)
    return {s.name for s in stale} | {s.name for stage in stale for s in nx.ancestors(graph, stage)}


def rerun_after_editing(repo: Path, file: str) -> set[str]:
    """:func:`rerun_set` after a comment is appended to ``file`` (a path in ``repo``; restored after)."""
    path = repo / file
    original = path.read_text()
    path.write_text(original + "\n# touched\n")
    try:
        return rerun_set(repo)
    finally:
        path.write_text(original)


def _stale(repo: Path) -> tuple[list, object]:
    """The stages ``dvc status`` lists, and the DAG (an edge runs from a stage to a stage it depends on)."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc:
        graph = dvc.index.graph
        by_address = {stage.addressing: stage for stage in graph}  # status keys: addresses relative to the cwd
        return [by_address[address] for address in dvc.status()], graph


def lock_entries(repo: Path, stages: set[str]) -> dict:
    """``dvc.lock``'s entries of ``stages`` (commands, deps, params and output hashes), as parsed YAML."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return {name: lock[name] for name in sorted(stages)}
