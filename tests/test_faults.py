"""Faults that public bug reports of neighbouring tools describe (issue 24), each tested as a kind: the test
fails on the code before its fix."""

from __future__ import annotations

import pytest
import torch
import yaml

from tools.code_deps import ROOT
from pipeline.config.loader import lookup
from pipeline.core.errors import PipelineError
from test_export import artifacts  # noqa: F401 (fixture)
from test_stage_errors import cls_data, workdir  # noqa: F401 (fixtures)


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


# --- 1. embedding tables larger than the tokenizer ------------------------------------------------------------

def _padded_checkpoint(root, family: str, tokenizer):
    """A tiny checkpoint of ``family`` built with transformers alone, its embedding table padded past the
    tokenizer to the next multiple of 8 (NVIDIA's BERTs; DeBERTa-v3 has 99 spare rows)."""
    import torch
    import transformers

    from family_kit import TINY

    rows = (len(tokenizer) // 8 + 1) * 8
    names = {"bert": "Bert", "modernbert": "ModernBert", "roberta": "Roberta"}[family]
    sizes = dict(TINY, max_position_embeddings=TINY["max_position_embeddings"] + 2)
    config = getattr(transformers, f"{names}Config")(vocab_size=rows, pad_token_id=tokenizer.pad_token_id, **sizes)
    torch.manual_seed(3)
    getattr(transformers, f"{names}ForMaskedLM")(config).save_pretrained(root / f"padded-{family}")
    return root / f"padded-{family}", rows


@pytest.mark.parametrize("family, style", [("bert", "wordpiece"), ("modernbert", "bpe_template")])
def test_a_padded_embedding_table_loads_trains_and_reloads(family, style, tmp_path, monkeypatch):
    """Checkpoints with more embedding rows than tokens were refused ("vocab_size ... but the tokenizer has")."""
    import torch

    from family_kit import make_data, make_tokenizer
    from pipeline.artifacts import load_model
    from pipeline.config.args import TrainArgs
    from pipeline.data.features import MlmCollator, encode_text
    from pipeline.data.io import read_split
    from pipeline.data.tokenizer import load_tokenizer
    from pipeline.models.build import ArchParams, init_model, with_head
    from pipeline.models.store import write_artifact
    from pipeline.pretrain.mlm import MlmParams, pretrain

    tok_dir = make_tokenizer(tmp_path / "tok", style)
    tokenizer = load_tokenizer(tok_dir)
    ckpt, rows = _padded_checkpoint(tmp_path, family, tokenizer)
    assert rows > len(tokenizer)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"]["base"] = str(ckpt)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    from test_stage_errors import stage

    assert stage("base").main([str(tok_dir), "models/base"]) == 0  # the base stage, as dvc runs it
    model, _ = load_model(tmp_path / "models" / "base", "mlm")
    assert model.config.vocab_size == rows and model.get_input_embeddings().num_embeddings == rows
    # Masking samples random tokens among the tokenizer's ids, never the padded rows.
    assert MlmCollator(tokenizer, 0.15, 0).vocab_size == len(tokenizer)
    data = make_data(tmp_path / "data", {"corpus": (32, 8)})
    rows_train, rows_valid = read_split(data / "corpus", "train", "text"), read_split(data / "corpus", "validation", "text")
    history = pretrain(model, rows_train, rows_valid, tokenizer, MlmParams(max_length=32),
                       TrainArgs(epochs=1, batch_size=16, seed=0), torch.device("cpu"), "pretrain")
    assert torch.isfinite(torch.tensor(history[-1]["loss"]))
    task_model = with_head(model, "classification")
    write_artifact(tmp_path / "models" / "cls", task_model, tok_dir, {"stage": "finetune", "head": "classification",
                                                                      "format": "dense", "task": "cls"})
    loaded, _ = load_model(tmp_path / "models" / "cls")
    feats = encode_text(rows_valid[:2], tokenizer, 32)
    ids = torch.tensor([f["input_ids"] for f in feats if len(f["input_ids"]) == len(feats[0]["input_ids"])])
    task_model.eval()
    torch.testing.assert_close(loaded(input_ids=ids).logits, task_model(input_ids=ids).logits, rtol=0, atol=0)
    # A teacher from the same checkpoint (init_model with a task head) loads too.
    teacher = init_model(ArchParams(base=str(ckpt)), "classification", len(tokenizer), tokenizer.pad_token_id)
    assert teacher.config.vocab_size == rows


def test_a_tokenizer_larger_than_the_table_is_still_refused(tmp_path):
    from pipeline.data.tokenizer import load_tokenizer
    from pipeline.models.build import ArchParams, init_model
    from family_kit import make_tokenizer

    tokenizer = load_tokenizer(make_tokenizer(tmp_path / "tok", "wordpiece"))
    ckpt, rows = _padded_checkpoint(tmp_path, "roberta", tokenizer)
    with pytest.raises(PipelineError, match=rf"^model\.base '.*' has vocab_size {rows} but the tokenizer has {rows + 1} tokens"):
        init_model(ArchParams(base=str(ckpt)), "mlm", rows + 1, tokenizer.pad_token_id)


# --- 3. duplicate question ids ----------------------------------------------------------------------------------

QA_CONTEXT = "The golden statue stands in front of the main building, facing the river."


def _squad_dir(root, ids: list[str]):
    """A local SQuAD v1.1 directory whose dev file holds questions with ``ids`` over two paragraphs."""
    import json

    def doc(qids, offset):
        paragraphs = [{"context": QA_CONTEXT[offset:], "qas": [
            {"id": q, "question": f"Where {n}?", "answers": [{"text": "river", "answer_start": QA_CONTEXT.index("river") - offset}]}
            for n, q in enumerate(qids[k::2])]} for k in range(2)]
        return {"version": "1.1", "data": [{"title": "T", "paragraphs": paragraphs}]}

    root.mkdir(parents=True, exist_ok=True)
    (root / "train-v1.1.json").write_text(json.dumps(doc(["t1", "t2"], 0)))
    (root / "dev-v1.1.json").write_text(json.dumps(doc(ids, 4)))
    return root


def test_prepare_refuses_a_duplicate_question_id_naming_file_id_and_rows(tmp_path, monkeypatch, capsys):
    """Two questions sharing an id were written as is, then pooled under one id at evaluation."""
    from test_stage_errors import stage

    src = _squad_dir(tmp_path / "squad", ["a", "b", "c", "a"])  # 'a' in both paragraphs
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["prepare"]["datasets"]["qa"] = {"type": "qa", "source": str(src)}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    code = stage("prepare").main(["data", "--only", "qa", "--metrics", "metrics/prepare/qa.json"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1, err
    assert err[0].startswith("error: prepare: prepare.datasets.qa: ") and err[0].endswith(
        "dev-v1.1.json: data[0].paragraphs[1].qas[1]: question id 'a' is already the id of data[0].paragraphs[0].qas[0] "
        "(the two would be scored as one question; prepare.datasets.qa.duplicate_ids: rename renames it)"), err[0]
    assert not (tmp_path / "data" / "qa").exists() and not (tmp_path / "metrics").exists()


def test_prepare_renames_duplicate_ids_by_policy_and_counts_them(tmp_path, monkeypatch):
    import json

    from test_stage_errors import stage

    src = _squad_dir(tmp_path / "squad", ["a", "a", "a_2", "a", "b"])
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["prepare"]["datasets"]["qa"] = {"type": "qa", "source": str(src), "duplicate_ids": "rename"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    assert stage("prepare").main(["data", "--only", "qa", "--metrics", "metrics/prepare/qa.json"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "data" / "qa" / "validation.jsonl").read_text().splitlines()]
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == len(ids) == 5 and ids.count("a") == 1 and "a_2" in ids
    counts = json.loads((tmp_path / "metrics" / "prepare" / "qa.json").read_text())["qa"]
    assert counts["validation"]["duplicate_ids_renamed"] == 2 and counts["train"]["duplicate_ids_renamed"] == 0


def test_duplicate_ids_policy_is_qa_only():
    from pipeline.data.params import DataSource

    with pytest.raises(ValueError, match="duplicate_ids applies only to qa data"):
        DataSource(type="classification", source="x", duplicate_ids="rename")


def test_qa_post_processing_refuses_duplicate_ids(tmp_path):
    """Second line of defence: post-processing pooled the windows of two questions sharing an id."""
    import numpy as np

    from family_kit import make_tokenizer
    from pipeline.data.tokenizer import load_tokenizer
    from pipeline.tasks import squad

    tokenizer = load_tokenizer(make_tokenizer(tmp_path / "tok", "wordpiece"))
    rows = [{"id": "q", "context": QA_CONTEXT, "question": "where?"},
            {"id": "q", "context": "the river is long and the statue is golden", "question": "what?"}]
    features = squad.prepare_eval_features(rows, tokenizer, max_length=32, doc_stride=8)
    n, length = len(features["example_id"]), len(features["input_ids"][0])
    logits = np.zeros((n, length))
    for post in (squad.postprocess_predictions, squad.nbest_predictions, squad.postprocess_predictions_v2):
        with pytest.raises(PipelineError, match=r"question id 'q' is shared by examples 1 and 2"):
            post(rows, features, logits, logits)


def test_qa_task_check_refuses_duplicate_ids_naming_the_lines(tmp_path):
    import json

    from family_kit import make_tokenizer
    from pipeline.data.tokenizer import load_tokenizer
    from pipeline import tasks
    from pipeline.tasks.qa import QAParams

    tokenizer = load_tokenizer(make_tokenizer(tmp_path / "tok", "wordpiece"))
    row = {"id": "x", "title": "", "context": QA_CONTEXT, "question": "where?",
           "answers": {"text": ["river"], "answer_start": [QA_CONTEXT.index("river")]}}
    (tmp_path / "qa").mkdir()
    (tmp_path / "qa" / "validation.jsonl").write_text("".join(json.dumps({**row, "id": i}) + "\n" for i in "xyx"))
    task = tasks.get(QAParams(type="qa", max_length=64, doc_stride=32))
    with pytest.raises(PipelineError, match=r"validation.jsonl: line 3: question id 'x' is already the id of line 1"):
        task.check_data(tmp_path / "qa", "validation", tokenizer, "tasks.qa")


# --- 2. non-finite logits ---------------------------------------------------------------------------------------

@pytest.fixture
def overflowing(tmp_path, tiny_config, tokenizer, monkeypatch):
    """A BERT classifier whose logits (~96,000) are finite in float32 but pass float16's 65,504, saved as the
    dense artifact ``models/cls/finetune`` with a validation split, in a directory with the shipped params."""
    import json
    import shutil

    import torch
    from transformers import BertForSequenceClassification

    from pipeline.core.files import atomic_dir
    from pipeline.models.store import save_model

    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    tokenizer.save_pretrained(tmp_path / "tok")
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config)
    with torch.no_grad():  # every weight stays within float16's range; the activation does not
        model.bert.pooler.dense.weight.fill_(1.0)
        model.bert.pooler.dense.bias.fill_(10.0)
        model.classifier.weight.fill_(3000.0)
    out = tmp_path / "models" / "cls" / "finetune"
    with atomic_dir(out) as tmp:
        save_model(tmp, model, tmp_path / "tok", {"stage": "finetune", "head": "classification", "format": "dense",
                                                 "task": "cls"})
    data = tmp_path / "data" / "cls"
    data.mkdir(parents=True)
    sentences = ["the movie was good", "the plot was awful", "not very great", "the movie was bad and dull"]
    data.joinpath("validation.jsonl").write_text(
        "".join(json.dumps({"sentence": s, "label": i % 2, "idx": i}) + "\n" for i, s in enumerate(sentences)))
    return out, data


def _fp16_artifact(source, out):
    from pipeline.core.files import atomic_dir
    from pipeline.artifacts import load_model
    from pipeline.models.store import save_model
    from pipeline.quantize import SCHEMES, NoParams, quantize_model

    model, meta = load_model(source)
    tensors, description = quantize_model(model, "fp16", NoParams())
    with atomic_dir(out) as tmp:
        save_model(tmp, model, source, {**meta, "stage": "quantize", "format": "fp16", "method": "fp16",
                                        "quantization": description}, tensors=tensors)
    assert SCHEMES.get("fp16").name == "fp16"
    return load_model(out)[0]


def test_quantize_stage_stops_on_non_finite_fp16_logits_with_one_line(overflowing):
    """The fp16 cast's NaN/inf logits crashed inside strict JSON writing (a traceback, exit 1)."""
    import os
    import subprocess
    import sys

    source, data = overflowing
    params = yaml.safe_load(open("params.yaml"))
    params["quantize"]["schemes"] = ["fp16"]
    yaml.safe_dump(params, open("params.yaml", "w"))
    out = source.parent / "quantize-finetune"
    proc = subprocess.run([sys.executable, str(ROOT / "stages" / "quantize.py"), "--task", "cls", "--scheme", "fp16", str(source),
                           str(data), str(out)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"})
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: quantize: {out}: ") and "logits are NaN or inf: fp16 range" in lines[0], lines[0]
    assert "use bf16" in lines[0]
    assert not out.exists()


def test_logit_error_and_evaluation_name_the_fp16_variant(overflowing):
    """The library functions the quantize, export and evaluate stages call stop before any metric sees NaN."""
    from pipeline import tasks
    from pipeline.data.tokenizer import load_tokenizer
    from pipeline.evaluation.scoring import task_metrics
    from pipeline.artifacts import load_model
    from pipeline.quantize import logit_error
    from pipeline.tasks.classification import ClassificationParams
    from pipeline.data.features import batches, collate

    source, data = overflowing
    fp16_dir = source.parent / "quantize-fp16"
    fp16 = _fp16_artifact(source, fp16_dir)
    dense, _ = load_model(source)
    task = tasks.get(ClassificationParams(type="classification", max_length=32, num_labels=2))
    tokenizer = load_tokenizer(source)
    # The dense model's logits are finite and large: the fault is the cast's.
    measured = task_metrics(task, dense, data, tokenizer, 8, torch.device("cpu"))
    assert 0 <= measured.scores["accuracy"] <= 1
    feats = task.train_features(task.rows(data, "validation"), tokenizer)
    batch = list(batches(feats, 32, lambda f: collate(f, tokenizer.pad_token_id)))
    with pytest.raises(PipelineError, match=rf"^{fp16_dir}: \d+ of \d+ logits are NaN or inf: fp16 range"):
        logit_error(dense, fp16, batch, task.logits)
    with pytest.raises(PipelineError, match=rf"^{fp16_dir}: \d+ of 8 logits are NaN or inf: fp16 range.*use bf16"):
        task_metrics(task, fp16, data, tokenizer, 8, torch.device("cpu"))


def test_non_finite_weights_are_named_as_diverged_training(tiny_config):
    import torch
    from transformers import BertForSequenceClassification

    from pipeline.core.finite import check_finite, name_variant

    model = name_variant(BertForSequenceClassification(tiny_config), "finetune cls")
    with torch.no_grad():
        model.classifier.weight[0, 0] = float("nan")
    with pytest.raises(PipelineError, match=r"^finetune cls: 1 of 4 logits are NaN or inf: its weights hold NaN"):
        check_finite([torch.tensor([[1.0, float("nan")], [0.0, 1.0]])], model)
    check_finite([torch.ones(2, 2)], model)  # finite: nothing raised


# --- 4. ONNX Runtime int8 without VNNI --------------------------------------------------------------------------

def test_reduce_range_defaults_to_the_safe_setting():
    """``reduce_range: false`` was the default: the u8s8 kernels of CPUs without VNNI can saturate."""
    from pipeline.config.loader import load
    from pipeline.export import Int8Params

    assert Int8Params().reduce_range is True
    (shipped,) = load({"export.int8": Int8Params}, file=ROOT / "params.yaml")
    assert shipped.reduce_range is True and shipped.max_relative_error == 0.1
    for bad in ("yes", 1, None):
        with pytest.raises(ValueError, match="reduce_range must be true, false or auto"):
            Int8Params(reduce_range=bad)


@pytest.mark.parametrize("flags, expected", [("fpu avx2 avx512f avx512_vnni", False), ("fpu avx2 avx_vnni", False),
                                             ("fpu sse4_2 avx2 fma", True), (None, True)])
def test_auto_reduce_range_follows_the_cpu_and_is_recorded(flags, expected, tmp_path):
    from pipeline.export.onnx_int8 import resolve_reduce_range

    cpuinfo = tmp_path / "cpuinfo"
    if flags is not None:  # None: unreadable (not Linux) -> the safe setting
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert resolve_reduce_range("auto", cpuinfo) == {"reduce_range": expected, "reduce_range_setting": "auto",
                                                     "cpu_vnni": not expected}
    assert resolve_reduce_range(False, cpuinfo) == {"reduce_range": False, "reduce_range_setting": False}
    assert resolve_reduce_range(True, cpuinfo) == {"reduce_range": True, "reduce_range_setting": True}


def test_an_int8_logit_error_past_the_bound_is_refused_naming_reduce_range():
    from pipeline.export.onnx_int8 import check_int8_error

    saturated = {"reduce_range": False, "reduce_range_setting": False, "max_relative_error": 0.1}
    check_int8_error({"logit_max_abs_error": 0.2, "logit_max_abs_reference": 2.0}, saturated, "v")  # at the bound
    with pytest.raises(PipelineError, match=r"^onnx_int8 export of m: int8 logit error 0\.283 exceeds 0\.1 x the "
                                            r"logits' scale 2 .*set export\.int8\.reduce_range: true"):
        check_int8_error({"logit_max_abs_error": 0.283, "logit_max_abs_reference": 2.0}, saturated,
                         "onnx_int8 export of m")
    safe = {**saturated, "reduce_range": True, "reduce_range_setting": "auto"}
    with pytest.raises(PipelineError, match=r"export\.int8\.reduce_range auto \(used: True\): try export\.int8\.per_channel"):
        check_int8_error({"logit_max_abs_error": 0.5, "logit_max_abs_reference": 2.0}, safe, "v")
    # logits all near 0 (an undecided head): the scale is floored at 1, so 1e-3 passes and 0.283 does not
    check_int8_error({"logit_max_abs_error": 0.001089, "logit_max_abs_reference": 0.00712}, saturated, "v")
    with pytest.raises(PipelineError, match=r"logits' scale 1 "):
        check_int8_error({"logit_max_abs_error": 0.283, "logit_max_abs_reference": 0.00712}, saturated, "v")


@pytest.mark.slow  # two ONNX exports
def test_export_stage_records_the_choice_and_refuses_a_graph_past_the_bound(workdir, artifacts, cls_data, capsys,
                                                                              monkeypatch, tmp_path):
    import json

    from test_export import export_argv
    from test_stage_errors import edit_params, run_stage
    from pipeline.export import onnx_int8

    vnni = tmp_path / "cpuinfo"
    vnni.write_text("flags\t\t: fpu avx2 avx512_vnni\n")
    monkeypatch.setattr(onnx_int8, "CPUINFO", vnni)
    edit_params(workdir, lambda d: d["export"]["int8"].update(reduce_range="auto"))
    code, err = run_stage("export", export_argv(workdir, "finetune"), capsys)
    assert code == 0, err
    meta = json.loads((workdir / "models/cls/onnx_int8-finetune/pipeline.json").read_text())
    q = meta["quantization"]
    assert (q["reduce_range"], q["reduce_range_setting"], q["cpu_vnni"], q["max_relative_error"]) == (False, "auto", True, 0.1)
    assert meta["results"]["logit_max_abs_reference"] > 0
    assert meta["results"]["logit_max_abs_error"] <= 0.1 * meta["results"]["logit_max_abs_reference"]
    # A bound below the graph's error: refused, one line naming the setting, nothing written.
    edit_params(workdir, lambda d: d["export"]["int8"].update(reduce_range=False, max_relative_error=1e-9))
    argv = export_argv(workdir, "prune-heads")
    code, err = run_stage("export", argv, capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: export: onnx_int8 export of ") and "set export.int8.reduce_range: true" in err[0]
    assert not any((workdir / p).exists() for p in argv[-2:]) and not (workdir / argv[3]).exists()
