"""Wall time of ``dvc repro``: a full run, a re-run after one late-stage parameter change, and a no-op.

Copies the repository (what a clean clone has: no data, models, metrics, lock or DVC cache) into a
temporary directory, commits it to a fresh git repository, then times, in that copy:

1. ``full``: ``dvc repro`` of the embedded default (every stage runs),
2. ``after_change``: ``dvc repro`` after setting ``--change`` (default ``evaluate.latency_repeats`` + 1;
   only the stages that read it and their downstream should run),
3. ``noop``: ``dvc repro`` again with nothing changed.

One JSON line each: ``{bench, run, seconds, stages_run, stages, change, tiny, target}``. Nothing in this
checkout is touched.

    python bench/dvc_repro_time.py                          # the embedded default (minutes to tens of minutes)
    python bench/dvc_repro_time.py --change "quantize.schemes=[weight_int8]"
    python bench/dvc_repro_time.py --tiny                   # tests/test_e2e.py's tiny params (needs pytest)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from common import ROOT, emit

sys.path.insert(0, str(ROOT / "tests"))
from clean_copy import clean_copy  # noqa: E402 (the same clean copy as the e2e tests)

def environment(repo: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(repo / "src"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"}


def run(repo: Path, *cmd: str) -> str:
    proc = subprocess.run(cmd, cwd=repo, env=environment(repo), capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout + proc.stderr


def stages_run(output: str) -> list[str]:
    """Stages that executed their command, from a ``dvc repro`` log (restored ones are not counted)."""
    return sorted(set(re.findall(r"Running stage '([^']+)'", output)))


def parse_change(text: str, params: dict) -> tuple[list[str], object]:
    """``key.path=value`` -> ``(path parts, YAML value)``; a bare ``key.path`` adds 1 to a number."""
    key, sep, value = text.partition("=")
    node = params
    parts = key.split(".")
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            raise SystemExit(f"--change: '{key}' is not a key of params.yaml")
        node = node[part]
    if sep:
        return parts, yaml.safe_load(value)
    if not isinstance(node, (int, float)) or isinstance(node, bool):
        raise SystemExit(f"--change: '{key}' is not a number; give a value ({key}=...)")
    return parts, node + 1


def set_param(params: dict, parts: list[str], value: object) -> None:
    node = params
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


def timed_repro(repo: Path, target: list[str]) -> tuple[float, list[str]]:
    t0 = time.perf_counter()
    out = run(repo, "dvc", "repro", *target)
    return time.perf_counter() - t0, stages_run(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--change", default="evaluate.latency_repeats",
                   help="KEY[=VALUE] set before the second run (default: evaluate.latency_repeats + 1)")
    p.add_argument("--tiny", action="store_true", help="shrink params with tests/test_e2e.py's tiny()")
    p.add_argument("--target", nargs="*", default=[], help="dvc repro targets (default: the whole pipeline)")
    p.add_argument("--keep", action="store_true", help="keep the temporary copy (its path goes to stderr)")
    args = p.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="dvc-repro-bench-"))
    repo = tmp / "repo"
    try:
        clean_copy(repo)
        params = yaml.safe_load((repo / "params.yaml").read_text())
        if args.tiny:
            from golden import tiny  # one definition of "tiny" for the e2e tests and this bench

            params = tiny(params)
        parts, value = parse_change(args.change, params)
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        run(repo, "git", "init", "-q")
        run(repo, "git", "add", "-A")
        run(repo, "git", "commit", "-qm", "bench")
        base = {"bench": "dvc_repro_time", "tiny": args.tiny, "target": args.target or "all"}
        seconds, ran = timed_repro(repo, args.target)
        emit({**base, "run": "full", "seconds": round(seconds, 2), "stages_run": len(ran), "stages": ran})
        set_param(params, parts, value)
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        seconds, ran = timed_repro(repo, args.target)
        emit({**base, "run": "after_change", "change": f"{'.'.join(parts)}={value}", "seconds": round(seconds, 2),
              "stages_run": len(ran), "stages": ran})
        seconds, ran = timed_repro(repo, args.target)
        emit({**base, "run": "noop", "seconds": round(seconds, 2), "stages_run": len(ran), "stages": ran})
    finally:
        if args.keep:
            print(f"kept {repo}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
