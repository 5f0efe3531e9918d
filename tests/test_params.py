"""params.yaml parsing, validation, and the dvc.yaml <-> code consistency contract."""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path

import pytest
import yaml

from import_closure import ROOT, closure
from pipeline import params
from pipeline.errors import PipelineError


def write(tmp_path, data) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def shipped() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_every_shipped_section_parses():
    data = shipped()
    for path in [
        "prepare", "model", "pretrain.mlm", "pretrain.train", "merge", "quantize", "evaluate",
        "prune.magnitude", "prune.heads", "distill.kd",
        *[f"pretrain.runs.{r}" for r in data["pretrain"]["runs"]],
        *[f"{s}.{t}" for t in data["tasks"] for s in ("tasks", "finetune", "teacher", "distill.train")],
    ]:
        (value,) = params.load(path, file=ROOT / "params.yaml")
        assert value is not None


def test_typed_values(tmp_path):
    data = shipped()
    mag, train = params.load("prune.magnitude", "finetune.cls", file=write(tmp_path, data))
    assert isinstance(mag, params.MagnitudeParams) and mag.sparsity == data["prune"]["magnitude"]["sparsity"]
    assert isinstance(train, params.TrainArgs) and isinstance(train.lr, float)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["prune"]["magnitude"].update(sparsty=0.5), "unknown key 'prune.magnitude.sparsty'"),
        (lambda d: d["prune"]["magnitude"].update(sparsity=1.0), "prune.magnitude': sparsity must be in [0, 1)"),
        (lambda d: d["prune"]["magnitude"].update(sparsity="high"), "'prune.magnitude.sparsity' must be float"),
        (lambda d: d["finetune"]["cls"].update(batch_size=3.5), "'finetune.cls.batch_size' must be int"),
        (lambda d: d["prune"]["heads"].update(keep_heads=0), "keep_heads and batches must be >= 1"),
        (lambda d: d["prune"]["magnitude"].update(scope="row"), "'prune.magnitude.scope' must be one of"),
        (lambda d: d["prune"].pop("magnitude"), "missing key 'prune.magnitude'"),
    ],
)
def test_bad_params_name_the_key(tmp_path, mutate, message):
    data = shipped()
    mutate(data)
    with pytest.raises(PipelineError) as err:
        params.load("prune.magnitude", "prune.heads", "finetune.cls", file=write(tmp_path, data))
    assert message in str(err.value)


def test_architecture_that_does_not_divide_is_rejected(tmp_path):
    data = shipped()
    data["model"]["num_attention_heads"] = 3
    with pytest.raises(PipelineError, match="not divisible"):
        params.load("model", file=write(tmp_path, data))


def test_malformed_yaml(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("prune: [unclosed\n")
    with pytest.raises(PipelineError, match="not valid YAML"):
        params.load("prune", file=path)


# ------------------------------------------------------------------ dvc.yaml <-> code consistency
def _stages():
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        for stage in repo.index.stages:
            if not stage.cmd:
                continue
            argv = shlex.split(stage.cmd)
            # python, or the launcher of params.yaml launch.command ('accelerate launch ...'), then the script
            start = next((i for i, a in enumerate(argv) if a.startswith("stages/")), None)
            assert start is not None and argv[0] in ("python", "accelerate", "torchrun"), stage.cmd
            argv = argv[start - 1 :]
            declared_params = set()
            for dep in stage.deps:
                if dep.__class__.__name__ == "ParamsDependency":
                    declared_params |= set(dep.params)
            deps = {str(Path(d.def_path)) for d in stage.deps if d.__class__.__name__ != "ParamsDependency"}
            yield stage.addressing, argv[1], argv[2:], declared_params, deps


def _load_stage_module(script: str):
    spec = importlib.util.spec_from_file_location(f"stage_{Path(script).stem}", ROOT / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_declared_params_equal_what_each_stage_reads():
    raw = shipped()
    checked = 0
    for name, script, argv, declared, _ in _stages():
        module = _load_stage_module(script)
        reads = module.reads(module.parser().parse_args(argv))
        expand = lambda keys: set().union(*(params.leaves(raw, k) for k in keys)) if keys else set()  # noqa: E731
        assert expand(declared) == expand(reads), f"{name}: dvc.yaml params != keys read by {script}"
        checked += 1
    assert checked >= 10


def test_declared_code_deps_equal_import_closure():
    for name, script, _, _, deps in _stages():
        code = {str(p.relative_to(ROOT)) for p in closure(ROOT / script)} | {script}
        declared_code = {d for d in deps if d.endswith(".py")}
        assert declared_code == code, f"{name}: missing {sorted(code - declared_code)}, extra {sorted(declared_code - code)}"


def test_every_params_key_is_read_by_some_stage():
    raw = shipped()
    read = set()
    for _, script, argv, _, _ in _stages():
        module = _load_stage_module(script)
        for key in module.reads(module.parser().parse_args(argv)):
            read |= params.leaves(raw, key)
    every = set().union(*(params.leaves(raw, k) for k in raw))
    # A registered pruning method outside the default comparison keeps its settings in params.yaml, ready
    # for when it is added to the prune matrix; anything else nobody reads is a mistake.
    from pipeline.prune import METHODS

    optional = set().union(*(params.leaves(raw, f"prune.{m}") for m in METHODS if m in raw["prune"]))
    assert every - read - optional == set(), "params nobody reads"
    assert set(raw["prune"]) <= set(METHODS), "prune sections that are no registered method"


def test_no_uncached_plain_outs():
    """Uncached files must be ``metrics:``/``plots:``: DVC's run-cache does not restore a stage whose plain
    ``outs:`` has ``cache: false`` (measured with DVC 3.67), which would make reverted params rerun it."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    offenders = []
    for name, stage in stages.items():
        body = stage.get("do", stage)
        for out in body.get("outs", []):
            if isinstance(out, dict) and any(opts.get("cache") is False for opts in out.values() if opts):
                offenders.append(f"{name}: {next(iter(out))}")
    assert not offenders, offenders


def test_top_level_plots_follow_the_variants():
    """The top-level ``plots:`` list each evaluated variant by name (DVC cannot template them from ``vars``):
    a variant added to or dropped from ``variants`` must be added to or dropped from them too."""
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    merged = {k: v for entry in dvc["vars"] for k, v in entry.items()}
    plots = {name: spec for entry in dvc["plots"] if isinstance(entry, dict) for name, spec in entry.items()}
    for task in merged["task_names"]:
        layers = set(plots[f"sparsity-per-layer-{task}"]["y"])
        assert layers == {f"metrics/plots/{task}/{v}/layers.csv" for v in merged["variants"]}, task
    assert set(plots["roc-cls"]["y"]) == {f"metrics/plots/cls/{v}/roc.csv" for v in merged["variants"]}
    confusion = {name.removeprefix("confusion-cls-") for name in plots if name.startswith("confusion-cls-")}
    assert confusion == set(merged["variants"])
    for v in merged["variants"]:
        assert plots[f"confusion-cls-{v}"]["y"] == {f"metrics/plots/cls/{v}/confusion.csv": "actual"}
