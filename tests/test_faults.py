"""Faults that public bug reports of neighbouring tools describe (issue 24), each tested as a kind: the test
fails on the code before its fix."""

from __future__ import annotations

import pytest
import yaml

from import_closure import ROOT
from pipeline.config.loader import lookup
from pipeline.core.errors import PipelineError


def _rename_task(params: dict, old: str, new: str) -> dict:
    for section in (params["tasks"], params["finetune"], params["teacher"], params["distill"]["train"],
                    params["prepare"]["datasets"]):
        section[new] = section.pop(old)
    return params


@pytest.mark.parametrize("name", ["glue.sst2", "my.task.v2"])
def test_a_dotted_task_name_is_refused_naming_the_dot(name, tmp_path):
    """A task name with a dot was refused with "missing key 'tasks.glue'": the dot is the cause."""
    from pipeline.schema import check_file

    params = _rename_task(yaml.safe_load((ROOT / "params.yaml").read_text()), "cls", name)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(PipelineError, match=rf"'\w+(\.\w+)*\.{name}': the name '{name}' contains a dot"):
        check_file(tmp_path / "params.yaml")
    # What a stage reads (its --task from dvc.yaml's foreach) names the dot too.
    for section in ("tasks", "finetune", "distill.train"):
        with pytest.raises(PipelineError, match=rf"^params.yaml: '{section}.{name}': the name '{name}' contains a dot"):
            lookup(params, f"{section}.{name}.lr" if section != "tasks" else f"{section}.{name}")


def test_a_missing_key_without_a_dot_is_still_named_missing():
    with pytest.raises(PipelineError, match=r"missing key 'tasks\.nope'"):
        lookup({"tasks": {"cls": {}, "a.b": {}}}, "tasks.nope")
