"""Property tests over the params schema: no number makes the loader fail any other way than one clear line.

Every numeric field of every section (found through :mod:`pipeline.schema` and ``dataclasses.fields``, nested
dataclasses, mapping entries and list items included, fields absent from the shipped file too) is set to NaN,
+-infinity, 0, a negative and a huge value, and to numbers hypothesis draws. Each load must either succeed or
raise one :class:`PipelineError` line that names the section and the field; never another exception type.
Every stage turns such an error into one line on stderr and exit code 2.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import typing
from pathlib import Path
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools.code_deps import ROOT
from pipeline import schema
from pipeline.config import loader
from pipeline.core.errors import PipelineError


@dataclasses.dataclass(frozen=True)
class Leaf:
    """A numeric field: where its value sits in the raw params mapping, and what names it in an error."""

    path: tuple[str, ...]
    """Keys from the top of params.yaml down to the field."""
    section: str
    """The dotted section loaded (a :func:`pipeline.schema.sections` path)."""
    owner: str
    """The dotted path of the mapping that holds the field (the dataclass it belongs to)."""
    field: str
    kind: type
    """``int`` or ``float``."""
    in_list: bool = False
    """The field is a list of numbers: the value is put in as a one-item list."""


def _numeric(tp) -> tuple[type, bool] | None:
    if tp in (int, float):
        return tp, False
    if typing.get_origin(tp) is list and typing.get_args(tp)[0] in (int, float):
        return typing.get_args(tp)[0], True
    return None


def _leaves(tp, node, path: tuple[str, ...], section: str) -> list[Leaf]:
    """The numeric leaves under ``node`` (the raw value at ``path``) of type ``tp``."""
    if typing.get_origin(tp) is dict:
        value_tp = typing.get_args(tp)[1]
        return [leaf for key, sub in (node or {}).items() for leaf in _leaves(value_tp, sub, (*path, key), section)]
    if not dataclasses.is_dataclass(tp):
        found = _numeric(tp)
        return [Leaf(path, section, ".".join(path[:-1]), path[-1], *found)] if found else []
    if hasattr(tp, "params_for"):
        tp = tp.params_for(node, ".".join(path))
    hints = typing.get_type_hints(tp)
    out = []
    for f in dataclasses.fields(tp):
        sub = (node or {}).get(f.name)
        if dataclasses.is_dataclass(hints[f.name]) or typing.get_origin(hints[f.name]) is dict:
            out += _leaves(hints[f.name], sub if sub is not None else {}, (*path, f.name), section)
        elif found := _numeric(hints[f.name]):
            out.append(Leaf((*path, f.name), section, ".".join(path), f.name, *found))
    return out


def shipped() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


SHIPPED = shipped()


def all_leaves() -> list[Leaf]:
    out = []
    for section, tp in schema.sections(SHIPPED).items():
        node = loader.lookup(SHIPPED, section)
        out += _leaves(tp, node, tuple(section.split(".")), section)
    return out


LEAVES = all_leaves()
SECTION_TYPES = schema.sections(SHIPPED)
SPECIAL = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf"), "zero": 0, "negative": -1,
           "huge_int": 10**400, "huge_float": 1.0e308, "tiny": 1.0e-320}


def set_value(data: dict, leaf: Leaf, value) -> dict:
    node = data
    for key in leaf.path[:-1]:
        node = node.setdefault(key, {})
    node[leaf.path[-1]] = [value] if leaf.in_list else value
    return data


def outcome(tmp_path: Path | None, leaf: Leaf, value) -> str | None:
    """None when the section loads, else the error line; any other exception type propagates.

    With ``tmp_path`` the params go through a YAML file as a user writes them; without, the loader is handed
    the parsed mapping directly (the same values YAML gives: ``.nan``, ``.inf``, big integers), which keeps the
    exhaustive sweep fast.
    """
    data = set_value(copy.deepcopy(SHIPPED), leaf, value)
    file = (tmp_path or Path(".")) / "params.yaml"
    sections = {leaf.section: SECTION_TYPES[leaf.section]}
    try:
        if tmp_path is None:
            with mock.patch.object(loader, "read_yaml", lambda _file: data):
                loader.load(sections, file=file)
        else:
            file.write_text(yaml.safe_dump(data))
            loader.load(sections, file=file)
    except PipelineError as err:
        return str(err)
    return None


def problem(leaf: Leaf, value, message: str | None) -> str | None:
    """What is wrong with the outcome of setting ``leaf`` to ``value`` (None: nothing)."""
    if message is None:
        return None
    if "\n" in message or not message.startswith("params.yaml: "):
        return f"not one params.yaml line: {message!r}"
    if leaf.owner not in message or leaf.field not in message:
        return f"does not name {leaf.owner}.{leaf.field}: {message!r}"
    return None


def test_the_schema_walk_finds_the_numeric_fields():
    """The enumeration sees nested, absent, mapping and list fields (so the properties below cover them)."""
    found = {".".join(leaf.path) for leaf in LEAVES}
    assert {"finetune.cls.epochs", "finetune.qa.max_grad_norm", "prune.gradual.train.warmup_ratio",
            "teacher.cls.arch.max_position_embeddings", "tasks.qa.n_best_size", "prepare.datasets.cls.train_size",
            "pretrain.runs.a.shard", "distill.kd.layer_map", "merge.weights", "merge.dare_ties.seed",
            "quantize.weight_int4.group_size", "evaluate.threads", "launch.num_processes"} <= found
    assert len(LEAVES) > 150


@pytest.mark.parametrize("name", sorted(SPECIAL))
def test_every_numeric_field_refuses_or_accepts_a_special_value_in_one_line(name):
    bad = {}
    for leaf in LEAVES:
        try:
            found = problem(leaf, SPECIAL[name], outcome(None, leaf, SPECIAL[name]))
        except Exception as err:  # noqa: BLE001 (the property: no other exception type)
            found = f"{type(err).__name__}: {str(err)[:200]}"
        if found:
            bad[".".join(leaf.path)] = found
    assert not bad, "\n".join(f"{k}: {v}" for k, v in bad.items())


# Values that no field accepts: impossible counts and sizes.
MUST_REFUSE = {
    ("tasks.qa.n_best_size", 0), ("tasks.qa.max_answer_length", 0), ("tasks.qa.max_length", 0),
    ("finetune.cls.batch_size", 0), ("finetune.cls.epochs", 0), ("finetune.cls.max_grad_norm", 0),
    ("finetune.cls.weight_decay", -1), ("finetune.cls.seed", -1), ("finetune.cls.seed", 10**400),
    ("pretrain.mlm.max_length", 0), ("pretrain.runs.a.shard", -1), ("pretrain.runs.a.seed", -1),
    ("model.max_position_embeddings", 0), ("model.seed", 10**400), ("distill.kd.layer_map", 0),
    ("merge.dare_linear.seed", -1), ("prepare.seed", -1), ("evaluate.threads", 0),
    ("quantize.logit_error.batches", 0), ("teacher.cls.arch.max_position_embeddings", -1),
}


@pytest.mark.parametrize("key, value", sorted(MUST_REFUSE, key=str),
                         ids=[f"{k}={v if abs(v) < 10**6 else 'huge'}" for k, v in sorted(MUST_REFUSE, key=str)])
def test_impossible_values_are_refused_at_load(tmp_path, key, value):
    (leaf,) = [leaf for leaf in LEAVES if ".".join(leaf.path) == key]
    message = outcome(tmp_path, leaf, value)
    assert message is not None, f"{key}={value} was accepted"
    assert problem(leaf, value, message) is None


numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70),
                    st.integers(-(10**400), 10**400))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(0, len(LEAVES) - 1), value=numbers)
def test_any_number_in_any_field_loads_or_gives_one_line(tmp_path, index, value):
    leaf = LEAVES[index]
    if leaf.kind is int and isinstance(value, float):
        value = value if not value.is_integer() else value + 0.5  # a float in an int field: a type error
    assert problem(leaf, value, outcome(tmp_path, leaf, value)) is None


# ------------------------------------------------------------------------------------------------ stages
STAGES = sorted(p.stem for p in (ROOT / "stages").glob("*.py"))


def test_every_stage_main_is_wrapped_by_stage_main():
    """A PipelineError anywhere under a stage's main becomes one line and exit 2 (core.errors.stage_main)."""
    for name in STAGES:
        tree = ast.parse((ROOT / "stages" / f"{name}.py").read_text())
        (main,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
        decorators = [ast.unparse(d) for d in main.decorator_list]
        assert decorators == [f"stage_main('{name}')"] or decorators == [f'stage_main("{name}")'], (name, decorators)


ARGV = {
    "prepare": ["data"],
    "base": ["data/tokenizer", "models/base"],
    "pretrain": ["--run", "a", "models/base", "data/corpus", "models/pretrain/a", "metrics/pretrain/a.json"],
    "merge": ["models/pretrain/a", "models/pretrain/b", "--base", "models/base", "--corpus", "data/corpus",
              "--out", "models/merged", "--metrics", "metrics/merge.json"],
    "finetune": ["--task", "cls", "models/merged", "data/cls", "models/cls/finetune"],
    "teacher": ["--task", "cls", "data/tokenizer", "data/cls", "models/cls/teacher"],
    "prune": ["--task", "cls", "--method", "magnitude", "models/cls/finetune", "data/cls", "models/cls/p"],
    "distill": ["--task", "cls", "models/cls/p", "models/cls/teacher", "data/cls", "models/cls/d"],
    "quantize": ["--task", "cls", "--scheme", "dynamic_int8", "models/cls/d", "data/cls", "models/cls/q"],
    "evaluate": ["--task", "cls", "--baseline", "models/cls/finetune", "--details", "d.json", "--facts", "f.json", "--speed", "s.json", "--predictions", "p",
                 "models/cls/q", "data/cls", "metrics/eval.json"],
    "export": ["--task", "cls", "--metrics", "metrics/export.json", "models/cls/d", "data/cls", "models/cls/o",
               "models/cls/o8"],
    "report": ["metrics", "reports", "--details", "metrics/details", "--train", "metrics/train", "--prepare",
               "metrics/prepare", "--data", "data", "--models", "models", "--variants", "finetune"],
}


@pytest.mark.parametrize("name", STAGES)
def test_every_stage_reports_a_pipeline_error_in_one_line_with_exit_2(tmp_path, monkeypatch, capsys, name):
    """Each stage with a params.yaml that is not YAML (report, which reads none: with no inputs)."""
    from test_stage_errors import stage

    (tmp_path / "params.yaml").write_text("model: [unclosed\n")
    monkeypatch.chdir(tmp_path)
    code = stage(name).main(ARGV[name])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"error: {name}: "), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # nothing written


def test_launch_command_is_documented_as_run_by_the_shell():
    """``launch.command`` is templated into dvc.yaml's ``cmd``, which DVC runs through the shell."""
    assert all("${launch.command} " in line for line in (ROOT / "dvc.yaml").read_text().splitlines()
               if "launch.command" in line and "cmd:" in line)
    params = (ROOT / "params.yaml").read_text()
    launch = params[params.index("\nlaunch:"):params.index("\npretrain:")]
    assert "shell" in launch
    page = " ".join((ROOT / "docs" / "gpu.md").read_text().split())
    assert "`launch.command` is pasted verbatim in front of the stage script and DVC runs the resulting `cmd` " \
           "through the shell" in page
