"""``profiles/apply.py --write`` edits params.yaml in place: comments, key order and flow style survive, only the
profile's values change, and a merged value of the wrong type or range is refused with one line."""

from __future__ import annotations

import re
import sys

import yaml

from tools.code_deps import ROOT

sys.path.insert(0, str(ROOT / "profiles"))
import apply  # noqa: E402  (profiles/apply.py)


def comments(text: str) -> list[str]:
    """Every comment of a YAML text, in order (the part of a line from an unquoted ``#``)."""
    return [m.group(1).strip() for line in text.splitlines() if (m := re.search(r"(?:^|\s)(#.*)$", line))]


def test_write_keeps_comments_order_and_flow_style(tmp_path):
    original = (ROOT / "params.yaml").read_text()
    profile = tmp_path / "profile.yaml"
    profile.write_text("model: {base: pkg:pipeline/data, hidden_size: 64}  # a profile comment\n"
                       "finetune:\n  cls: {epochs: 2, lr: 1.0e-4}\n"
                       "merge:\n  weights: [0.25, 0.75]\n")
    out = tmp_path / "params.yaml"
    assert apply.main([str(profile), "--params", str(ROOT / "params.yaml"), "--write", str(out)]) == 0
    text = out.read_text()
    assert comments(text) == comments(original) and len(comments(original)) > 30
    assert list(yaml.safe_load(text)) == list(yaml.safe_load(original))  # section order
    merged = yaml.safe_load(text)
    assert merged["model"]["base"] == "pkg:pipeline/data" and merged["model"]["hidden_size"] == 64
    assert merged["finetune"]["cls"] == {**yaml.safe_load(original)["finetune"]["cls"], "epochs": 2, "lr": 1e-4}
    assert merged["merge"]["weights"] == [0.25, 0.75]
    # flow mappings stay on one line, block sections stay blocks, numbers keep their spelling
    assert re.search(r"^  cls: \{epochs: 2, batch_size: 32, lr: 1\.0e-4, seed: 0\}$", text, re.M)
    assert re.search(r"^  weights: \[0\.25, 0\.75\] +# one per pretraining run", text, re.M)
    assert re.search(r"^  base: pkg:pipeline/data +# scratch \|", text, re.M)
    # nothing else changed: the same values, and the same lines except the edited ones and a hand-wrapped flow
    # mapping (tasks.qa), which ruamel writes on one line
    expected = yaml.safe_load(original)
    expected["model"].update(base="pkg:pipeline/data", hidden_size=64)
    expected["finetune"]["cls"].update(epochs=2, lr=1e-4)
    expected["merge"]["weights"] = [0.25, 0.75]
    assert merged == expected
    gone = set(original.splitlines()) - set(text.splitlines())
    assert {line.split(":")[0].strip() for line in gone} == {"base", "hidden_size", "cls", "weights", "qa",
                                                             "version_2_with_negative"}, gone


def test_bad_value_is_refused_with_one_line_and_nothing_written(tmp_path, capsys):
    profile = tmp_path / "bad.yaml"
    profile.write_text("prune:\n  magnitude: {sparsity: 1.5}\n")
    out = tmp_path / "params.yaml"
    assert apply.main([str(profile), "--params", str(ROOT / "params.yaml"), "--write", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'prune.magnitude': sparsity must be in [0, 1)" in err[0], err
    assert not out.exists()


def test_wrong_type_is_refused_in_the_overrides_mode_too(tmp_path, capsys):
    profile = tmp_path / "bad.yaml"
    profile.write_text("finetune:\n  cls: {epochs: many}\n")
    assert apply.main([str(profile), "--params", str(ROOT / "params.yaml")]) == 1
    err = capsys.readouterr()
    assert err.out == "" and "'finetune.cls.epochs' must be float, got str 'many'" in err.err
