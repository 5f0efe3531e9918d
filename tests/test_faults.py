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


@pytest.mark.parametrize("student, teacher", [(s, t) for s in range(1, 25) for t in range(1, 25)])
def test_uniform_layer_map_stays_in_the_teachers_layers(student, teacher):
    """round((i+1)*T/S) gave 0 (the embedding output / attentions[-1]) for S >= 2T; every entry must be a real
    teacher layer, the map must not go back, end at the last layer, and repeat each teacher layer evenly."""
    from pipeline.distill.kd import KDParams, resolve_layer_map, uniform_layer_map

    layer_map = uniform_layer_map(student, teacher)
    assert len(layer_map) == student and all(1 <= t <= teacher for t in layer_map), layer_map
    assert layer_map == sorted(layer_map) and layer_map[-1] == teacher
    if student >= teacher:  # every teacher layer used, each by floor or ceil of S/T student layers
        counts = [layer_map.count(t) for t in range(1, teacher + 1)]
        assert max(counts) - min(counts) <= 1 and min(counts) >= 1, layer_map
    else:  # distinct layers, gaps of floor or ceil of T/S
        gaps = [b - a for a, b in zip([0, *layer_map], layer_map)]
        assert max(gaps) - min(gaps) <= 1, layer_map
    assert resolve_layer_map(KDParams(), student, teacher) == layer_map


def test_uniform_layer_map_of_divisible_depths_is_tinyberts():
    """TinyBERT's g(m) = m * N / M when the teacher's depth is a multiple of the student's."""
    from pipeline.distill.kd import uniform_layer_map

    assert uniform_layer_map(4, 12) == [3, 6, 9, 12]
    assert uniform_layer_map(6, 6) == [1, 2, 3, 4, 5, 6]
    assert uniform_layer_map(4, 2) == [1, 1, 2, 2]


def test_the_uniform_map_goes_through_the_hand_given_maps_validation(monkeypatch):
    """A computed map out of range (here forced) is refused like a hand-given one, not used."""
    from pipeline.distill import kd as kd_module

    monkeypatch.setattr(kd_module, "uniform_layer_map", lambda s, t: [0] * s)
    with pytest.raises(PipelineError, match=r"uniform layer map .* entries \[0, 0\] are outside the teacher's layers 1\.\.3"):
        kd_module.resolve_layer_map(kd_module.KDParams(), 2, 3)
    with pytest.raises(PipelineError, match=r"^distill\.kd\.layer_map entries \[4\] are outside"):
        kd_module.resolve_layer_map(kd_module.KDParams(layer_map=[1, 4]), 2, 3)
