"""ONNX export: graphs that reproduce the PyTorch logits, int8 within a looser bound, weights named back for the
model facts, the stage end to end (evaluate scores its artifacts) and bad input as one line."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
import yaml
from transformers import BertConfig, BertForQuestionAnswering, BertForSequenceClassification

from tools.code_deps import ROOT
from pipeline.artifacts import format_devices, load_model, read_meta
from pipeline.core.errors import PipelineError
from pipeline.core.files import atomic_dir
from pipeline.export import RUNTIMES, GraphParams, Int8Params
from pipeline.export.libraries import onnx
from pipeline.export.onnx import artifact_state, export_onnx
from pipeline.export.onnx_int8 import quantize_onnx
from pipeline.export.runtime import OrtModel
from pipeline.export.weights import float_state, weight_map
from pipeline.models.store import TOKENIZER_FILES, save_model
from pipeline.models.structure import prune_heads_, prune_ffn_
from pipeline.quantize.dynamic_int8 import int8_tensors, quantize_dynamic_int8
from pipeline.report.collect import EXPORT_FORMATS, Pipeline, collect, current_variants
from test_stage_errors import cls_data, edit_params, run_stage, workdir  # noqa: F401 (fixtures)

HEADS = {"classification": (BertForSequenceClassification, ("logits",)),
         "qa": (BertForQuestionAnswering, ("start_logits", "end_logits"))}


def batch(seed: int, rows: int, length: int) -> dict[str, torch.Tensor]:
    """``(rows, length)`` token ids of the tiny vocabulary, padded in row 1, with a second segment."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 64, (rows, length), generator=g)
    mask = torch.ones_like(ids)
    mask[1, length // 2:] = 0
    segments = torch.zeros_like(ids)
    segments[:, length // 3:] = 1
    return {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": segments}


def tiny(tiny_config, head: str, pruned: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    model = HEADS[head][0](copy.deepcopy(tiny_config)).eval()
    with torch.no_grad():  # non-zero biases: a zero bias may be dropped by the graph optimizer (tested apart)
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.uniform_(-0.1, 0.1)
    if pruned:  # heads and FFN neurons removed unevenly: every layer has its own shapes
        prune_heads_(model, {0: [0, 2], 1: [3]})
        prune_ffn_(model, {1: list(range(0, 64, 3))})
    return model


def max_error(reference, other, fields) -> float:
    return max(float((getattr(reference, f) - getattr(other, f)).abs().max()) for f in fields)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``{(head, pruned): (model, float dir, int8 dir, onnx description)}``, each exported once."""
    config = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, pad_token_id=0)
    out = {}
    for head in HEADS:
        for pruned in (False, True):
            model = tiny(config, head, pruned)
            root = tmp_path_factory.mktemp(f"{head}-{pruned}")
            (root / "fp32").mkdir(), (root / "int8").mkdir()
            described = export_onnx(model, batch(0, 2, 7), head, root / "fp32", GraphParams())
            quantize_onnx(root / "fp32" / "model.onnx", root / "int8" / "model.onnx", Int8Params())
            out[head, pruned] = model, root / "fp32", root / "int8", described
    return out


CASES = [(h, p) for h in HEADS for p in (False, True)]


@pytest.mark.slow  # shares the module's four ONNX exports (about 35 s)
@pytest.mark.parametrize("head, pruned", CASES)
@torch.inference_mode()
def test_onnx_reproduces_pytorch_and_int8_stays_close(exported, head, pruned):
    model, fp32, int8, _ = exported[head, pruned]
    fields = HEADS[head][1]
    for seed, rows, length in ((1, 3, 11), (2, 5, 23)):  # other batch sizes and lengths than the example's
        inputs = batch(seed, rows, length)
        reference = model(**inputs)
        assert max_error(reference, OrtModel(fp32 / "model.onnx", head)(**inputs), fields) < 1e-5
        int8_error = max_error(reference, OrtModel(int8 / "model.onnx", head)(**inputs), fields)
        spread = max(float(getattr(reference, f).abs().max()) for f in fields)
        assert 1e-5 < int8_error < 0.1 * spread + 0.01  # quantized (not the float graph), yet close


@pytest.mark.slow  # shares the module's four ONNX exports (about 35 s)
@pytest.mark.parametrize("head, pruned", CASES)
def test_weights_are_named_back_for_the_facts(exported, head, pruned):
    model, fp32, int8, described = exported[head, pruned]
    state = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    back = artifact_state(fp32, {"onnx": described})
    assert back.keys() == state.keys() and all(torch.equal(back[k], v) for k, v in state.items())
    quantized = artifact_state(int8, {"onnx": described})
    proto = onnx.load(str(int8 / "model.onnx"))
    scales = [onnx.numpy_helper.to_array(i) for i in proto.graph.initializer if i.name.endswith("_scale")]
    step = max(float(s.max()) for s in scales)
    errors = {k: float((quantized[k] - v).abs().max()) for k, v in state.items()}
    assert max(errors.values()) <= step / 2 + 1e-6  # rounding: at most half a quantization step
    assert errors[next(k for k in state if k.endswith("query.weight"))] > 0  # really int8
    assert {k: tuple(v.shape) for k, v in quantized.items()} == {k: tuple(v.shape) for k, v in state.items()}


def test_zero_tensors_missing_from_the_graph_count_as_zeros(tiny_config):
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config).eval()
    with torch.no_grad():
        model.classifier.bias.zero_()
    proto = onnx.ModelProto()
    proto.graph.initializer.append(onnx.numpy_helper.from_array(model.classifier.weight.detach().numpy().T.copy(), "w"))
    state = {"classifier.weight": model.classifier.weight, "classifier.bias": model.classifier.bias}
    mapping = weight_map(proto, state)
    assert mapping == {"classifier.weight": {"initializer": "w", "transposed": True}, "classifier.bias": {"zeros": [2]}}
    assert torch.equal(float_state(proto, mapping)["classifier.weight"], model.classifier.weight.detach())
    state["classifier.bias"] = torch.ones(2)
    with pytest.raises(PipelineError, match="classifier.bias"):
        weight_map(proto, state)


@pytest.mark.slow  # shares the module's four ONNX exports (about 35 s)
def test_export_is_byte_identical_and_free_of_local_paths(exported, tmp_path):
    model, fp32, _, _ = exported["classification", True]
    export_onnx(model, batch(0, 2, 7), "classification", tmp_path, GraphParams())
    data = (tmp_path / "model.onnx").read_bytes()
    assert data == (fp32 / "model.onnx").read_bytes()
    assert b"site-packages" not in data and str(ROOT).encode() not in data


@pytest.mark.slow  # shares the module's four ONNX exports (about 35 s)
def test_torchscript_exporter_gives_the_same_logits(exported, tmp_path):
    model = exported["qa", True][0]
    export_onnx(model, batch(0, 2, 7), "qa", tmp_path, GraphParams(exporter="torchscript", opset=17))
    inputs = batch(3, 4, 13)
    with torch.inference_mode():
        assert max_error(model(**inputs), OrtModel(tmp_path / "model.onnx", "qa")(**inputs),
                         HEADS["qa"][1]) < 1e-5


@pytest.mark.slow  # shares the module's four ONNX exports (about 35 s)
def test_wrapper_names_missing_inputs_and_follows_torch_threads(exported):
    graph = OrtModel(exported["classification", False][1] / "model.onnx", "classification")
    inputs = batch(1, 2, 5)
    with pytest.raises(ValueError, match=r"missing \['token_type_ids'\]"):
        graph(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    with pytest.raises(ValueError, match=r"unknown \['labels'\]"):
        graph(**inputs, labels=torch.zeros(2, dtype=torch.long))
    previous = torch.get_num_threads()
    try:
        for threads in (2, 1):
            torch.set_num_threads(threads)
            graph(**inputs)
            assert graph.session().get_session_options().intra_op_num_threads == threads
    finally:
        torch.set_num_threads(previous)


def test_an_exporter_failure_is_one_line_naming_the_other_exporter(monkeypatch, tiny_config):
    def fail(*args, **kwargs):
        raise torch.onnx.errors.OnnxExporterError("Failed to export the model with torch.export.\nmore")

    monkeypatch.setattr(torch.onnx, "export", fail)
    model = BertForSequenceClassification(tiny_config).eval()
    with pytest.raises(PipelineError, match=r"\(dynamo exporter\) failed: Failed to export the model with torch.export."
                                            r" \(export.onnx.exporter: torchscript may work\)$"):
        export_onnx(model, batch(0, 2, 5), "classification", Path("unused"), GraphParams())


def test_bad_params_are_named():
    from pipeline.config import loader

    with pytest.raises(ValueError, match="opset must be in \\[18, 23\\] with the dynamo exporter"):
        GraphParams(opset=17)
    with pytest.raises(PipelineError, match="export.onnx.exporter"):
        loader._convert({"exporter": "tracer"}, GraphParams, "export.onnx")


def test_runtime_formats_dispatch_by_name():
    assert RUNTIMES.find("dense") is None and RUNTIMES.find("dynamic_int8") is None
    assert RUNTIMES.find("onnx").weights == RUNTIMES.find("onnx_int8").weights == "model.onnx"
    assert RUNTIMES.find("onnx").devices == ("cpu",)


def test_missing_extra_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    spec = importlib.util.spec_from_file_location("libraries_copy", ROOT / "src/pipeline/export/libraries.py")
    with pytest.raises(PipelineError, match=r"'onnx' extra \(onnxruntime is not installed\): pip install"):
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


# ------------------------------------------------------------------------------------------ the stage
def _save(path, model, tok, tensors=None, **meta):
    with atomic_dir(path) as tmp:
        save_model(tmp, model, tok, {"stage": path.name, "head": "classification", "format": "dense",
                                     "task": "cls", **meta}, tensors=tensors)
    return path


@pytest.fixture
def artifacts(workdir, tiny_config, tokenizer):
    tok = workdir / "data" / "tokenizer"  # where prepare writes it: the report's lineage check reads it there
    tokenizer.save_pretrained(tok)
    root = workdir / "models" / "cls"
    dense = tiny(tiny_config, "classification", False)
    heads = tiny(tiny_config, "classification", True)
    edit_params(workdir, lambda d: d["evaluate"].update(latency_repeats=2, latency_warmup=1, latency_batch_size=4))
    return {"finetune": _save(root / "finetune", dense, tok), "prune-heads": _save(root / "prune-heads", heads, tok),
            "model": dense, "tok": tok}


def export_argv(workdir, source: str) -> list[str]:
    root = workdir / "models" / "cls"
    return ["--task", "cls", "--metrics", f"metrics/export/cls/{source}.json", str(root / source), "data/cls",
            str(root / f"onnx-{source}"), str(root / f"onnx_int8-{source}")]


def evaluate(workdir, variant: str, capsys) -> dict:
    root = workdir / "models" / "cls"
    out = workdir / "metrics" / "eval" / "cls" / f"{variant}.json"
    files = [arg for kind in ("details", "facts", "speed") for arg in (f"--{kind}", f"metrics/{kind}/cls/{variant}.json")]
    code, err = run_stage("evaluate", ["--task", "cls", "--baseline", str(root / "finetune"), *files,
                                       "--predictions", f"metrics/predictions/cls/{variant}", str(root / variant),
                                       "data/cls", str(out)], capsys)
    assert code == 0, err
    return {k: v for kind in ("eval", "facts", "speed")
            for k, v in json.loads((workdir / "metrics" / kind / "cls" / f"{variant}.json").read_text()).items()}


def test_stage_exports_and_evaluate_scores_both(workdir, artifacts, cls_data, capsys):
    code, err = run_stage("export", export_argv(workdir, "prune-heads"), capsys)
    assert code == 0, err
    root = workdir / "models" / "cls"
    metrics = json.loads((workdir / "metrics/export/cls/prune-heads.json").read_text())
    assert metrics["onnx_logit_max_abs_error"] < 1e-5 < metrics["onnx_int8_logit_max_abs_error"] < 0.05
    assert metrics["exporter"] == "dynamo" and metrics["compared_logits"] == 4 * 2
    tokenizer_files = {p.name for p in artifacts["tok"].iterdir() if p.name in TOKENIZER_FILES}
    pytorch = evaluate(workdir, "prune-heads", capsys)
    for fmt in ("onnx", "onnx_int8"):
        art = root / f"{fmt}-prune-heads"
        assert {p.name for p in art.iterdir()} == {"config.json", "model.onnx", "pipeline.json"} | tokenizer_files
        meta = json.loads((art / "pipeline.json").read_text())
        assert meta["format"] == fmt and meta["stage"] == "export" and meta["source"]["variant"] == "prune-heads"
        assert meta["results"]["logit_max_abs_error"] == metrics[f"{fmt}_logit_max_abs_error"]
        assert str(artifacts["prune-heads"]) in meta["parents"]
        model, _ = load_model(art, "classification")
        assert isinstance(model, OrtModel) and format_devices(art, meta) == ("cpu",)
        assert model.position_table == (64, 0) and model.config.num_labels == 2  # for the tasks' early checks
        scores = evaluate(workdir, f"{fmt}-prune-heads", capsys)
        assert scores["format"] == fmt and scores["params"] == pytorch["params"]
        assert scores["heads_total"] == 3 and scores["size_bytes"] == (art / "model.onnx").stat().st_size
        assert scores["cpu_bs1_speedup"] > 0 and scores["latency_ms_p50"] > 0
        details = json.loads((workdir / f"metrics/details/cls/{fmt}-prune-heads.json").read_text())
        assert [r["heads"] for r in details["layers"]] == [2, 1]
        if fmt == "onnx":  # the same predictions as PyTorch: the task code scored the graph unchanged
            assert scores["accuracy"] == pytorch["accuracy"] and scores["auc"] == pytest.approx(pytorch["auc"])
    assert scores["quantization"] == "onnx_int8" and scores["size_bytes"] < pytorch["size_bytes"]
    # The report keeps both graphs: export.sources names them, and their files' lineage matches the artifacts.
    variants = current_variants(["finetune", "prune-heads"], ([], []), ["prune-heads"], [])
    found = collect(workdir / "metrics", workdir / "metrics/details",
                    Pipeline(["cls"], variants, workdir / "data", workdir / "models"))
    assert {"prune-heads", "onnx-prune-heads", "onnx_int8-prune-heads"} <= set(found.results["cls"].index)
    assert [(x.variant, x.reason) for x in found.left_out] == [("finetune", "not evaluated (no metrics files)")]


def bad_export(workdir, source: str, capsys) -> str:
    code, err = run_stage("export", export_argv(workdir, source), capsys)
    assert code == 2 and len(err) == 1, err
    root = workdir / "models" / "cls"
    assert not (root / f"onnx-{source}").exists() and not (root / f"onnx_int8-{source}").exists()
    assert not (workdir / "metrics" / "export" / "cls" / f"{source}.json").exists()
    return err[0]


def test_a_quantized_source_is_one_line(workdir, artifacts, cls_data, capsys):
    tensors, scheme = int8_tensors(quantize_dynamic_int8(artifacts["model"]))
    _save(workdir / "models/cls/quantize", artifacts["model"], artifacts["tok"], format="dynamic_int8",
          quantization=scheme, tensors=tensors)
    assert "format 'dynamic_int8' cannot be exported" in bad_export(workdir, "quantize", capsys)


def test_an_exported_source_is_one_line(workdir, artifacts, cls_data, capsys):
    assert run_stage("export", export_argv(workdir, "finetune"), capsys)[0] == 0
    assert "format 'onnx' cannot be exported" in bad_export(workdir, "onnx-finetune", capsys)


def test_an_unsupported_head_is_one_line(workdir, artifacts, cls_data, tiny_config, capsys):
    from transformers import BertForMaskedLM

    with atomic_dir(workdir / "models/cls/base") as tmp:
        save_model(tmp, BertForMaskedLM(tiny_config), artifacts["tok"], {"stage": "base", "head": "mlm",
                                                                        "format": "dense"})
    assert "holds a 'mlm' model, expected 'classification'" in bad_export(workdir, "base", capsys)
    with pytest.raises(PipelineError, match="a 'mlm' model cannot be exported"):
        export_onnx(BertForMaskedLM(tiny_config), batch(0, 2, 5), "mlm", workdir, GraphParams())


def test_inputs_longer_than_the_graphs_positions_are_one_line(workdir, artifacts, cls_data, capsys):
    """The tasks' early check of max_length against the position embeddings holds for a graph too (the table's
    shape is recorded at export: the graph has no modules to read it from)."""
    assert run_stage("export", export_argv(workdir, "finetune"), capsys)[0] == 0
    edit_params(workdir, lambda d: d["tasks"]["cls"].update(max_length=100))
    code, err = run_stage("evaluate", ["--task", "cls", "--baseline", "models/cls/finetune", "--details", "d.json",
                                       "--facts", "f.json", "--speed", "s.json", "--predictions", "p",
                                       "models/cls/onnx_int8-finetune", "data/cls", "out.json"], capsys)
    assert code == 2 and len(err) == 1, err
    assert "tasks.cls.max_length=100 exceeds the 64 positions of models/cls/onnx_int8-finetune" in err[0]
    assert not (workdir / "out.json").exists()


def test_a_corrupt_graph_is_one_line(workdir, artifacts, cls_data, capsys):
    assert run_stage("export", export_argv(workdir, "finetune"), capsys)[0] == 0
    graph = workdir / "models/cls/onnx-finetune/model.onnx"
    graph.write_bytes(graph.read_bytes()[:1000])
    code, err = run_stage("evaluate", ["--task", "cls", "--baseline", "models/cls/finetune", "--details", "d.json",
                                       "--facts", "f.json", "--speed", "s.json", "--predictions", "p",
                                       str(graph.parent), "data/cls", "out.json"], capsys)
    assert code == 2 and len(err) == 1 and "model.onnx: ONNX Runtime cannot load it" in err[0]
    assert not (workdir / "out.json").exists()
    graph.unlink()  # the weights file an artifact must hold is the one its format names
    with pytest.raises(PipelineError, match="onnx-finetune/model.onnx: missing from the artifact"):
        read_meta(graph.parent)


def test_every_export_source_is_evaluated_and_reported():
    """dvc.yaml's export stage writes one artifact per runtime format for every ``export.sources`` entry, the
    ``evaluate-export`` matrix evaluates exactly those, and the report counts them among the current variants
    (:data:`pipeline.report.collect.EXPORT_FORMATS`); dvc.yaml's ``variants`` (the plain evaluate matrix) names
    none of them, which would evaluate them twice."""
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    stages, variants = dvc["stages"], next(v["variants"] for v in dvc["vars"] if "variants" in v)
    assert stages["export"]["matrix"]["source"] == stages["evaluate-export"]["matrix"]["source"] == "${export.sources}"
    formats_ = stages["evaluate-export"]["matrix"]["format"]
    assert formats_ == list(EXPORT_FORMATS) and all(RUNTIMES.find(f) is not None for f in formats_)
    assert stages["export"]["outs"] == [f"models/${{item.task}}/{f}-${{item.source}}" for f in formats_]
    assert "export.sources" in stages["report"]["params"]
    assert not [v for v in variants if v.split("-", 1)[0] in formats_]
    assert current_variants(["finetune"], (["dynamic_int8"], ["distill-heads"]), ["finetune", "distill-heads"],
                            []) == ["finetune", "quantize-dynamic_int8-distill-heads", "onnx-finetune",
                                    "onnx-distill-heads", "onnx_int8-finetune", "onnx_int8-distill-heads"]
