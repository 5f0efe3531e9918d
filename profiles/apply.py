"""Apply a params profile: print it as ``dvc exp run -S`` overrides, or merge it into a params file.

A profile is a partial ``params.yaml``: only the keys it sets change. A key the target params file lacks is
added when the schema knows it (it lies in a section :mod:`pipeline.schema` types, such as
``prepare.datasets.cls.glue``) and refused otherwise (a typo would add a key no stage reads); the merged file
must pass :func:`pipeline.schema.check_file` (every section loaded with its type, so an unknown field of a
known section is refused there, the task sections agreeing), in both modes. In the sections whose keys are
task and data set names (``tasks``, ``prepare.datasets``, ``finetune``, ``teacher``, ``distill.train``) a
profile may also add an entry (a new task) and remove one with ``null`` (``cls: null``). A profile that adds
or removes keys is applied with ``--write``
(``profiles/tasks/sst2.yaml``). ``--write`` edits the file with a round-trip YAML parser (ruamel.yaml):
comments, key order and flow style stay as they were; only the values the profile sets change. When it
writes this checkout's ``params.yaml`` and the task names or pretraining runs change, it regenerates
``dvc.yaml`` (``python -m tools.dvc_yaml``: the merge inputs and the per-task plots are written from them).

    python profiles/apply.py profiles/hub.yaml                     # -S overrides, one line
    dvc exp run $(python profiles/apply.py profiles/hub.yaml)
    python profiles/apply.py profiles/minilm.yaml --write params.yaml
    python profiles/apply.py profiles/tasks/sst2.yaml --write params.yaml   # SST-2 instead of cls and qa
"""

from __future__ import annotations

import argparse
import io
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from ruamel.yaml import YAML

# This checkout's library, whatever is installed: the params file is checked against the code it belongs to.
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from pipeline.core.errors import PipelineError  # noqa: E402
from pipeline.config.task_names import NAMED  # noqa: E402


def round_trip() -> YAML:
    """A ruamel.yaml round-trip parser that keeps quotes and writes long lines as they are."""
    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    # No re-wrapping: ruamel cannot keep a hand-wrapped flow mapping's line breaks, so such a mapping is written
    # on one line (same content) rather than broken at arbitrary columns.
    rt.width = 4096
    return rt


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
    """Set ``profile``'s leaves in ``base`` in place (a round-trip mapping keeps its comments and style) and
    return it; a key missing from ``base`` is a ValueError naming the dotted key, except an entry of a
    :data:`~pipeline.config.task_names.NAMED` section, which is added (or removed, when the profile sets it to null).

    A collection that replaces a collection takes the old one's flow or block style (an empty ``[]``/``{}`` has
    none recorded: the profile's style is kept then).
    """
    named = where.rstrip(".") in NAMED
    for key, value in profile.items():
        if key not in base and (value is None or not (named or schema_knows(f"{where}{key}"))):
            raise ValueError(f"profile key '{where}{key}' does not exist in the params file, and no params "
                             "section of the schema holds it")
        if value is None and named:
            del base[key]
            continue
        old = base.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            merge(old, value, f"{where}{key}.")
            continue
        style = old.fa.flow_style() if hasattr(old, "fa") and hasattr(value, "fa") else None
        if style is not None:
            value.fa.set_flow_style() if style else value.fa.set_block_style()
        base[key] = value
    return base


def schema_knows(path: str) -> bool:
    """Whether a section :mod:`pipeline.schema` types is, or holds, dotted ``path`` (``prepare.datasets.cls.glue``
    lies in ``prepare``; ``prune.magnitude.x`` in a plug-in section). The section's own type then checks the
    key itself (:func:`pipeline.schema.check_file` refuses a field its dataclass lacks)."""
    from pipeline import schema  # imports every method: only when a profile adds a key

    parts = path.split(".")
    prefixes = [".".join(parts[:n]) for n in range(1, len(parts) + 1)]
    return any(p in schema.FIXED for p in prefixes) or (len(parts) > 1 and parts[0] in schema.PLUGINS)


def overrides(profile: dict) -> list[str]:
    """``-S key=value`` arguments for ``dvc exp run`` (values as flow-style YAML, which DVC parses)."""
    args = []
    for key, value in flatten(profile).items():
        plain = json.loads(json.dumps(value))  # round-trip types (CommentedSeq, ScalarFloat) as plain values
        text = json.dumps(plain) if isinstance(plain, (list, str)) else yaml.safe_dump(plain).splitlines()[0]
        args += ["-S", f"{key}={text}"]
    return args


def checked_text(params: Path, profile: dict) -> tuple[str, bool]:
    """The params file with ``profile`` merged, as YAML text, after :func:`pipeline.schema.check_file` passed,
    and whether the merge added or removed keys (tasks, fields), which this tool's ``-S`` overrides do not do.

    Raises:
        ValueError: a profile key the params file lacks and the schema does not know.
        PipelineError: a merged value of the wrong type or out of range, or task sections that disagree.
    """
    from pipeline import schema  # imports every method: only when a profile is checked

    rt = round_trip()
    before = set(flatten(yaml.safe_load(params.read_text())))
    merged = merge(rt.load(params.read_text()), profile)
    buffer = io.StringIO()
    rt.dump(merged, buffer)
    with tempfile.TemporaryDirectory() as tmp:
        check = Path(tmp) / "params.yaml"
        check.write_text(buffer.getvalue())
        schema.check_file(check)
    return buffer.getvalue(), set(flatten(yaml.safe_load(buffer.getvalue()))) != before


def dag_names(text: str) -> tuple[list[str], list[str]]:
    """The task names and pretraining runs of a params file's text: what ``dvc.yaml`` is generated from."""
    data = yaml.safe_load(text) or {}
    return list(data.get("tasks") or {}), list((data.get("pretrain") or {}).get("runs") or {})


def regenerate_dvc_yaml() -> int:
    """Write this checkout's ``dvc.yaml`` from ``dvc.in.yaml`` and the new params; the generator's exit code."""
    print("profiles/apply.py: task or pretraining-run names changed: regenerating dvc.yaml "
          "(python -m tools.dvc_yaml)", file=sys.stderr)
    return subprocess.run([sys.executable, "-m", "tools.dvc_yaml"], cwd=REPO).returncode


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profile", type=Path)
    p.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file the keys must exist in")
    p.add_argument("--write", type=Path, help="write the merged params here instead of printing overrides")
    args = p.parse_args(argv)
    profile = round_trip().load(args.profile.read_text()) or {}
    try:
        text, reshaped = checked_text(args.params, profile)
    except (ValueError, PipelineError) as err:
        print(f"{args.profile}: {err}", file=sys.stderr)
        return 1
    if args.write:
        before = args.write.read_text() if args.write.is_file() else ""
        args.write.write_text(text)
        if args.write.resolve() == REPO / "params.yaml" and dag_names(before) != dag_names(text):
            return regenerate_dvc_yaml()
    elif reshaped:
        print(f"{args.profile}: adds or removes keys (tasks or fields the params file lacks); apply it with "
              "--write params.yaml", file=sys.stderr)
        return 1
    else:
        print(shlex.join(overrides(profile)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
