"""Apply a params profile: print it as ``dvc exp run -S`` overrides, or merge it into a params file.

A profile is a partial ``params.yaml``: only the keys it sets change. Every key must already exist in the
target params file (a typo would otherwise add a key no stage reads), and the merged file must parse.

    python profiles/apply.py profiles/hub.yaml                     # -S overrides, one line
    dvc exp run $(python profiles/apply.py profiles/hub.yaml)
    python profiles/apply.py profiles/minilm.yaml --write params.yaml
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import yaml


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
    """A copy of ``base`` with ``profile``'s leaves set; a key missing from ``base`` is a ValueError."""
    out = dict(base)
    for key, value in profile.items():
        if key not in base:
            raise ValueError(f"profile key '{where}{key}' does not exist in the params file")
        if isinstance(value, dict) and isinstance(base[key], dict):
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
        args.write.write_text(yaml.safe_dump(merged, sort_keys=False))
    else:
        print(shlex.join(overrides(profile)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
