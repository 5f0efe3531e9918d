"""``profiles/apply.py`` adds a key the params file lacks when the schema knows it, and refuses one it does not
(issue 25.8)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("apply", ROOT / "profiles" / "apply.py")
apply = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(apply)


def _setup(tmp_path, profile: str) -> tuple[Path, Path]:
    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    prof = tmp_path / "profile.yaml"
    prof.write_text(profile)
    return params, prof


def test_a_key_the_schema_knows_is_added_with_write(tmp_path, capsys):
    src = tmp_path / "SST-2"
    params, prof = _setup(tmp_path, f"prepare:\n  datasets:\n    cls: {{source: {src}, glue: sst2, "
                                    "columns: {sentence: text_a}}\ntasks:\n  cls: {glue: sst2}\n")
    assert "glue" not in yaml.safe_load(params.read_text())["prepare"]["datasets"]["cls"]
    assert apply.main([str(prof), "--params", str(params), "--write", str(params)]) == 0
    cls = yaml.safe_load(params.read_text())["prepare"]["datasets"]["cls"]
    assert cls["glue"] == "sst2" and cls["columns"] == {"sentence": "text_a"} and cls["source"] == str(src)
    # Without --write: -S overrides cannot add it, and the message says how to apply it.
    shutil.copy(ROOT / "params.yaml", params)
    assert apply.main([str(prof), "--params", str(params)]) == 1
    assert "adds or removes keys" in capsys.readouterr().err


def test_keys_the_schema_does_not_know_are_still_refused(tmp_path, capsys):
    for profile, named in [("prepare:\n  datasets:\n    cls: {colour: red}\n", "prepare.datasets.cls.colour"),
                           ("pretrain:\n  fancy: {depth: 3}\n", "pretrain.fancy"),
                           ("nonsense: 1\n", "nonsense")]:
        params, prof = _setup(tmp_path, profile)
        before = params.read_text()
        assert apply.main([str(prof), "--params", str(params), "--write", str(params)]) == 1, profile
        assert named in capsys.readouterr().err, profile
        assert params.read_text() == before


def test_schema_knows():
    assert apply.schema_knows("prepare.datasets.cls.glue")
    assert apply.schema_knows("prune.magnitude.sparsity")
    assert not apply.schema_knows("pretrain.fancy")
    assert not apply.schema_knows("nonsense")
