"""``dvc.yaml`` is generated from ``dvc.in.yaml`` and ``params.yaml`` by ``python -m tools.dvc_yaml``: the committed
file is the generator's output, task and pretraining-run names come from params.yaml, and source mistakes are
one-line errors naming the stage."""

from __future__ import annotations

import pytest
import yaml

from tools import dvc_yaml
from tools.dvc_yaml import COMMAND, PARAMS, SOURCE, TARGET, SourceError, render


def test_committed_dvc_yaml_is_the_generators_output():
    assert TARGET.read_text() == render(SOURCE.read_text()), (
        f"dvc.yaml is stale against dvc.in.yaml, params.yaml or src/pipeline's imports: run `{COMMAND}`")


def _params(tmp_path, edit) -> str:
    params = yaml.safe_load(PARAMS.read_text())
    edit(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def _rendered(tmp_path, edit, source: str | None = None) -> dict:
    return yaml.safe_load(render(source or SOURCE.read_text(), _params(tmp_path, edit)))


def test_merge_inputs_and_plots_follow_params_yaml(tmp_path):
    """A third pretraining run and a third (classification) task change dvc.yaml: merge reads every run, and the
    new task gets the plots of its type (a QA task no ROC or confusion plot), its primary metric on the y axis."""
    def edit(p):
        p["pretrain"]["runs"]["c"] = {"seed": 3, "shard": 0}
        p["tasks"]["nli"] = {**p["tasks"]["cls"], "num_labels": 3, "glue": "mnli"}

    dvc = _rendered(tmp_path, edit)
    merge = dvc["stages"]["merge"]
    runs = ["models/pretrain/a", "models/pretrain/b", "models/pretrain/c"]
    assert merge["cmd"].startswith(f"python stages/merge.py {' '.join(runs)} --base models/base ")
    assert [d for d in merge["deps"] if d.startswith("models/pretrain/")] == runs
    plots = {name: spec for entry in dvc["plots"] if isinstance(entry, dict) for name, spec in entry.items()}
    assert {"pareto-size-nli", "roc-nli", "confusion-nli", "sparsity-per-layer-nli"} <= set(plots)
    assert "reports/nli/figures/paper_2x2.png" in dvc["plots"]
    assert plots["pareto-size-nli"]["y"] == {"reports/nli/data/pareto.csv": "accuracy"}
    assert plots["pareto-size-qa"]["y"] == {"reports/qa/data/pareto.csv": "f1"}
    assert "roc-qa" not in plots and "confusion-qa" not in plots
    assert not any("task_types" in spec for spec in plots.values() if isinstance(spec, dict))


def test_one_run_and_one_task(tmp_path):
    def edit(p):
        del p["pretrain"]["runs"]["b"]
        del p["tasks"]["qa"]

    dvc = _rendered(tmp_path, edit)
    assert " models/pretrain/b" not in dvc["stages"]["merge"]["cmd"]
    assert not [e for e in dvc["plots"] if "qa" in yaml.safe_dump(e)]


def test_evaluate_is_defined_once_and_makes_four_stages():
    """One evaluate definition in the source; its four stages differ only in their matrix and variant."""
    source = yaml.safe_load(SOURCE.read_text())["stages"]
    assert [n for n, s in source.items() if "stages/evaluate.py" in s.get("do", s)["cmd"]] == ["evaluate"]
    stages = yaml.safe_load(TARGET.read_text())["stages"]
    made = {n: s for n, s in stages.items() if "stages/evaluate.py" in s.get("do", s)["cmd"]}
    assert set(made) == set(source["evaluate"]["instances"]) == {
        "evaluate", "evaluate-sweep", "evaluate-quantize", "evaluate-export"}
    for name, stage in made.items():
        variant = source["evaluate"]["instances"][name]["<variant>"]
        assert f"models/${{item.task}}/{variant}" in stage["deps"], name
        assert stage["matrix"] == source["evaluate"]["instances"][name]["matrix"], name
        assert {k: v for k, v in stage.items() if k != "matrix"} == yaml.safe_load(
            yaml.safe_dump({k: v for k, v in made["evaluate"].items() if k != "matrix"}).replace(
                "${item.variant}", variant)), name


def test_code_deps_are_computed_not_written():
    """The source lists no library module; dvc.yaml's stages list the modules their scripts import."""
    assert "- src/pipeline/core" not in SOURCE.read_text()
    stages = yaml.safe_load(TARGET.read_text())["stages"]
    assert "src/pipeline/core/errors.py" in stages["tokenizer"]["deps"]


HAND_LISTED = "      - stages/prepare.py\n      - src/pipeline/core/errors.py\n"


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace("      - stages/prepare.py\n", HAND_LISTED, 1),
     "stage 'tokenizer': list its script and templated plug-in files"),
    (lambda s: s.replace("<variant>: ${item.variant}", "<variants>: ${item.variant}"),
     "stage 'evaluate': no value for <variant>"),
    (lambda s: s.replace("models/pretrain/<pretrain.runs> --base", "models/pretrain/<pretrain.run> --base"),
     "stage 'merge' names <pretrain.run>, which is no non-empty mapping in params.yaml"),
])
def test_source_mistakes_are_one_line_errors_naming_the_stage(edit, message):
    source = SOURCE.read_text()
    changed = edit(source)
    assert changed != source
    with pytest.raises(SourceError, match=r"^dvc\.in\.yaml: ") as err:
        render(changed)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_check_fails_on_a_stale_file_naming_the_command(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "dvc.yaml"
    stale.write_text(TARGET.read_text().replace("models/pretrain/b", "models/pretrain/old"))
    monkeypatch.setattr(dvc_yaml, "TARGET", stale)
    assert dvc_yaml.main(["--check"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"dvc.yaml is stale against dvc.in.yaml, params.yaml or src/pipeline's imports: run `{COMMAND}`")
    assert dvc_yaml.main([]) == 0 and dvc_yaml.main(["--check"]) == 0
    assert stale.read_text() == TARGET.read_text()
