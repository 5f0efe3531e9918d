"""params.yaml parsing, validation, and the dvc.yaml <-> code consistency contract."""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path

import pytest
import yaml

from tools.code_deps import PLUGIN_PACKAGES, ROOT, TEMPLATED, closure, expand, expected_code_deps, helpers, rel
from pipeline import schema
from pipeline.config import loader
from pipeline.core.errors import PipelineError


def write(tmp_path, data) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def shipped() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def load_one(path: str, file) -> object:
    (value,) = loader.load({path: schema.section_type(path, file)}, file=file)
    return value


def test_every_shipped_section_parses():
    values = schema.check_file(ROOT / "params.yaml")
    assert {"prepare", "model", "tasks", "evaluate", "quantize.logit_error", "prune.magnitude", "merge.slerp"} <= set(values)
    assert all(v is not None for v in values.values())


def test_typed_values(tmp_path):
    data = shipped()
    file = write(tmp_path, data)
    mag, train = load_one("prune.magnitude", file), load_one("finetune.cls", file)
    assert type(mag).__name__ == "MagnitudeParams" and mag.sparsity == data["prune"]["magnitude"]["sparsity"]
    assert type(train).__name__ == "TrainArgs" and isinstance(train.lr, float)
    task = load_one("tasks.qa", file)
    assert type(task).__name__ == "QAParams" and task.doc_stride == data["tasks"]["qa"]["doc_stride"]


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
        (lambda d: d["prune"]["magnitude"].update(sparsity=float("nan")), "'prune.magnitude.sparsity' must be a finite"),
        (lambda d: d["finetune"]["cls"].update(lr=float("inf")), "'finetune.cls.lr' must be a finite number"),
        (lambda d: d["tasks"]["cls"].update(type="ner"), "'tasks.cls.type': unknown task type 'ner' (known: classification, qa)"),
        (lambda d: d["tasks"]["cls"].update(doc_stride=8), "unknown key 'tasks.cls.doc_stride'"),
    ],
)
def test_bad_params_name_the_key(tmp_path, mutate, message):
    data = shipped()
    mutate(data)
    file = write(tmp_path, data)
    with pytest.raises(PipelineError) as err:
        loader.load({"prune.magnitude": schema.section_type("prune.magnitude"), "prune.heads": schema.section_type("prune.heads"),
                     "finetune.cls": schema.section_type("finetune.cls"), "tasks.cls": schema.section_type("tasks.cls")},
                    file=file)
    assert message in str(err.value)


def test_non_finite_merge_weight_is_refused_before_merging(tmp_path):
    """A NaN merge weight once wrote an all-NaN model with exit 0."""
    data = shipped()
    data["merge"]["weights"] = [1.0, float("nan")]
    with pytest.raises(PipelineError, match="'merge.weights\\[1\\]' must be a finite number"):
        schema.check_file(write(tmp_path, data))


def test_architecture_that_does_not_divide_is_rejected(tmp_path):
    data = shipped()
    data["model"]["num_attention_heads"] = 3
    with pytest.raises(PipelineError, match="not divisible"):
        load_one("model", write(tmp_path, data))


def test_malformed_yaml(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("prune: [unclosed\n")
    with pytest.raises(PipelineError, match="not valid YAML"):
        loader.load({"prune": dict}, file=path)


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
        expand_keys = lambda keys: set().union(*(loader.leaves(raw, k) for k in keys)) if keys else set()  # noqa: E731
        assert expand_keys(declared) == expand_keys(reads), f"{name}: dvc.yaml params != keys read by {script}"
        checked += 1
    assert checked >= 10


def test_declared_code_deps_equal_import_closure():
    """A stage declares its script, what the script imports, and the plug-in files it runs (templated in
    dvc.yaml) with the helpers of their package: no more, no less."""
    raw_stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    templated = {name: [d for d in stage.get("do", stage).get("deps", []) if isinstance(d, str) and TEMPLATED.match(d)]
                 for name, stage in raw_stages.items()}
    for name, script, _, _, deps in _stages():
        declared = expand({d for d in deps if d.startswith(("src/", "stages/"))})
        static = expected_code_deps(script, [])  # plug-ins the script imports itself, or picked by data, included
        plugins = [d for d in declared if d not in static and _plugin_package(d)]
        expected = static | set(plugins)
        for dep in plugins:
            expected |= rel(helpers(_plugin_package(dep)))
        assert declared == expected, f"{name}: missing {sorted(expected - declared)}, extra {sorted(declared - expected)}"
        assert len(plugins) == len(templated[name.split("@")[0]]), f"{name}: plug-in files must be templated"


def _plugin_package(dep: str) -> str | None:
    """The plug-in package of a dep that is a registered plug-in's file (``src/pipeline/prune/magnitude.py``)."""
    parts = Path(dep).parts
    if len(parts) == 4 and parts[:2] == ("src", "pipeline") and parts[2] in PLUGIN_PACKAGES:
        from tools.code_deps import plugin_files

        if Path(dep).stem in plugin_files(parts[2]):
            return parts[2]
    return None


def test_every_params_key_is_read_by_some_stage():
    raw = shipped()
    read = set()
    for _, script, argv, _, _ in _stages():
        module = _load_stage_module(script)
        for key in module.reads(module.parser().parse_args(argv)):
            read |= loader.leaves(raw, key)
    every = set().union(*(loader.leaves(raw, k) for k in raw))
    # A registered method outside the default run keeps its settings in params.yaml, ready for when it is
    # chosen (merge.method, quantize.scheme) or added to the prune matrix; anything else nobody reads is a
    # mistake.
    optional = set().union(*(loader.leaves(raw, f"{parent}.{key}") for parent, registry in schema.PLUGINS.items()
                             for key in raw[parent] if key in registry.names()))
    # quantize.sources and prune.sweep are read by dvc.yaml's matrices (the values reach the stages as arguments).
    assert every - read - optional - {"quantize.sources", "prune.sweep"} == set(), "params nobody reads"
    methods = set(raw["prune"]) - {"sweep"}
    assert methods <= set(schema.PLUGINS["prune"].names()), "prune sections that are no registered method"


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


def plot_definitions() -> dict[str, dict]:
    """The top-level ``plots:`` of dvc.yaml as ``{id: {"template", "files"}}``; a bare path is its own file."""
    out = {}
    for entry in yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]:
        (name, spec), = (entry if isinstance(entry, dict) else {entry: None}).items()
        spec = spec or {}
        files = list(spec["y"]) if isinstance(spec.get("y"), dict) else [name]
        out[name] = {"template": spec.get("template"), "files": files}
    return out


def test_top_level_plots_name_no_variant_and_read_stage_outputs():
    """The top-level ``plots:`` read long-format files (a ``variant`` column), so they name no variant and a variant
    added to ``variants`` needs no plot edit; each template is DVC's or shipped in ``.dvc/plots``; each file they
    read lies in some stage's output."""
    from dvc.repo import Repo
    from dvc_render.vega_templates import TEMPLATES

    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    variants = next(entry["variants"] for entry in dvc["vars"] if "variants" in entry)
    text = yaml.safe_dump(dvc["plots"])
    assert [v for v in variants if v in text] == [], "top-level plots name variants"
    definitions = plot_definitions()
    builtin = {t.DEFAULT_NAME for t in TEMPLATES}
    custom = {d["template"] for d in definitions.values()} - builtin - {None}
    assert custom and all((ROOT / ".dvc" / "plots" / f"{t}.json").is_file() for t in custom), custom
    with Repo(str(ROOT)) as repo:
        outs = {str(Path(o.def_path)) for stage in repo.index.stages for o in stage.outs}
    for name, d in definitions.items():
        for file in d["files"]:
            # a file in an output directory, an output, or a directory of outputs (metrics/train)
            inside = [o for o in outs if file == o or file.startswith(o + "/") or o.startswith(file + "/")]
            assert inside, f"{name}: no stage writes {file}"
