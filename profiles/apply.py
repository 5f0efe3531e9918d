"""Apply a params profile: print it as ``dvc exp run -S`` overrides, or merge it into a params file.

A profile is a partial ``params.yaml``: only the keys it sets change. Every key must already exist in the
target params file (a typo would otherwise add a key no stage reads), and the merged file must parse. The
exception are the sections whose keys are task and data set names (``tasks``, ``prepare.datasets``,
``finetune``, ``teacher``, ``distill.train``): there a profile may add an entry (a new task) and remove one
with ``null`` (``cls: null``); such a profile is applied with ``--write`` (``profiles/tasks/sst2.yaml``).

    python profiles/apply.py profiles/hub.yaml                     # -S overrides, one line
    dvc exp run $(python profiles/apply.py profiles/hub.yaml)
    python profiles/apply.py profiles/minilm.yaml --write params.yaml
    python profiles/apply.py profiles/tasks/sst2.yaml --write params.yaml   # SST-2 instead of cls and qa
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

import yaml

# This checkout's library (the task sections and the params check), whichever copy is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from pipeline.task_list import NAMED  # noqa: E402


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    """``{"a.b.c": leaf}`` for every leaf of a nested mapping (lists are leaves)."""
    out: dict[str, object] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= flatten(value, path + ".")
        else:
            out[path] = value
    return out


def merge(base: dict, profile: dict, where: str = "") -> dict:
    """A copy of ``base`` with ``profile``'s leaves set; a key missing from ``base`` is a ValueError, except an
    entry of a :data:`NAMED` section, which is added (or removed, when the profile sets it to null)."""
    out = dict(base)
    named = where.rstrip(".") in NAMED
    for key, value in profile.items():
        if key not in base and not (named and value is not None):
            raise ValueError(f"profile key '{where}{key}' does not exist in the params file")
        if value is None and named:
            del out[key]
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = merge(base[key], value, f"{where}{key}.")
        else:
            out[key] = value
    return out


def overrides(profile: dict) -> list[str]:
    """``-S key=value`` arguments for ``dvc exp run`` (values as flow-style YAML, which DVC parses)."""
    args = []
    for key, value in flatten(profile).items():
        text = json.dumps(value) if isinstance(value, (list, str)) else yaml.safe_dump(value).splitlines()[0]
        args += ["-S", f"{key}={text}"]
    return args


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profile", type=Path)
    p.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file the keys must exist in")
    p.add_argument("--write", type=Path, help="write the merged params here instead of printing overrides")
    args = p.parse_args(argv)
    profile = yaml.safe_load(args.profile.read_text()) or {}
    try:
        merged = merge(yaml.safe_load(args.params.read_text()), profile)
    except ValueError as err:
        print(f"{args.profile}: {err}", file=sys.stderr)
        return 1
    if args.write:
        return write_checked(args.write, merged, args.profile)
    if set(flatten(merged)) != set(flatten(yaml.safe_load(args.params.read_text()))):
        print(f"{args.profile}: adds or removes tasks; apply it with --write params.yaml", file=sys.stderr)
        return 1
    print(shlex.join(overrides(profile)))
    return 0


def write_checked(path: Path, merged: dict, profile: Path) -> int:
    """Write ``merged`` to ``path`` if every section parses and the tasks agree (pipeline.schema.check_file);
    else print the first problem and write nothing."""
    from pipeline import schema  # imports every method: only here
    from pipeline.core.errors import PipelineError

    text = yaml.safe_dump(merged, sort_keys=False)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "params.yaml").write_text(text)
        try:
            schema.check_file(Path(tmp) / "params.yaml")
        except PipelineError as err:
            print(f"{profile}: {err}", file=sys.stderr)
            return 1
    path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
