"""The task metrics as local ``evaluate`` modules: offline loading by path, the hub modules' key sets, values
worked out by hand, strict JSON, evaluate's module cache, and the pipeline's scoring going through them."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertForQuestionAnswering

import pipeline.metrics.modules as metric_modules
from pipeline.metrics import glue as glue_metrics
from pipeline.tasks import glue
from pipeline.metrics.modules import load_module, path
from pipeline.tasks.qa import QAParams, QATask

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_EVALUATE_OFFLINE"):
    os.environ.setdefault(_var, "1")
evaluate = pytest.importorskip("evaluate")

REPO = Path(__file__).resolve().parents[1]
ACC_F1 = {"accuracy", "f1"}
# The output keys of the hub's official modules (written out here, not taken from the code under test).
HUB_GLUE_KEYS = {"cola": {"matthews_correlation"}, "stsb": {"pearson", "spearmanr"}, "mrpc": ACC_F1, "qqp": ACC_F1,
                 **{c: {"accuracy"} for c in ("sst2", "mnli", "mnli_matched", "mnli_mismatched", "qnli", "rte",
                                              "wnli", "hans")}}
HUB_SQUAD_V2_KEYS = {"exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total", "NoAns_exact", "NoAns_f1",
                     "NoAns_total", "best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"}


def load(name: str, config: str | None = None):
    """The module loaded the way a user would, by its directory."""
    return evaluate.load(str(path(name)), config, keep_in_memory=True)


def strict(result: dict) -> dict:
    """``result`` after a strict JSON round trip (fails on NaN or infinity)."""
    return json.loads(json.dumps(result, allow_nan=False))


def squad_refs(golds: dict[str, list[str]]) -> list[dict]:
    return [{"id": qid, "answers": {"text": texts, "answer_start": [0] * len(texts)}} for qid, texts in golds.items()]


# ------------------------------------------------------------------------------------------------ glue


@pytest.mark.parametrize("config", sorted(HUB_GLUE_KEYS))
def test_glue_loads_by_path_with_every_hub_config_and_its_keys(config):
    module = load("glue", config)
    if config == "stsb":
        # x centred (-1, 0, 1), y centred (-2, 1, 1): r = 3 / sqrt(2 * 6); ranks (1, 2, 3) vs (1, 2.5, 2.5):
        # centred (-1, 0, 1) . (-1, .5, .5) = 1.5 over sqrt(2 * 1.5) -> sqrt(3) / 2.
        got = module.compute(predictions=[1.0, 2.0, 3.0], references=[0.0, 3.0, 3.0])
        expected = {"pearson": 3 / np.sqrt(12), "spearmanr": np.sqrt(3) / 2}
    else:
        # preds 1 1 0 0 1 0 vs labels 1 0 0 1 1 0: TP 2, TN 2, FP 1, FN 1 -> accuracy 4/6, F1 4/6,
        # Matthews (4 - 1) / sqrt(3 * 3 * 3 * 3) = 1/3.
        got = module.compute(predictions=[1, 1, 0, 0, 1, 0], references=[1, 0, 0, 1, 1, 0])
        every = {"accuracy": 4 / 6, "f1": 4 / 6, "matthews_correlation": 1 / 3}
        expected = {k: every[k] for k in HUB_GLUE_KEYS[config]}
    assert set(got) == HUB_GLUE_KEYS[config]
    assert strict(got) == pytest.approx(expected)


def test_glue_rejects_an_unknown_config():
    with pytest.raises(KeyError, match="glue config must be one of"):
        load("glue", "sts")
    with pytest.raises(KeyError):
        load("glue")  # no config: the hub module refuses that too


def test_undefined_glue_metrics_are_none_in_strict_json():
    stsb = load("glue", "stsb").compute(predictions=[0.5, 0.5, 0.5], references=[1.0, 2.0, 4.0])
    assert stsb == {"pearson": None, "spearmanr": None}
    assert strict(stsb) == stsb
    # Matthews of a constant prediction is 0.0 by convention (see pipeline.metrics.glue.matthews_corrcoef).
    assert strict(load("glue", "cola").compute(predictions=[1, 1, 1], references=[0, 1, 0])) == {
        "matthews_correlation": 0.0}


def test_glue_values_equal_the_pipeline_functions():
    rng = np.random.default_rng(0)
    labels, preds = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    got = load("glue", "mrpc").compute(predictions=preds, references=labels)
    assert got == {"accuracy": glue_metrics.accuracy(preds, labels), "f1": glue_metrics.binary_f1(preds, labels)}
    scores, gold = rng.normal(size=50).astype(np.float32), rng.normal(size=50)
    got = load("glue", "stsb").compute(predictions=scores, references=gold)  # float32 in, no float32 rounding
    assert got == {"pearson": glue_metrics.pearson(scores, gold), "spearmanr": glue_metrics.spearman(scores, gold)}


# ----------------------------------------------------------------------------------------------- squad


def test_squad_loads_by_path_with_the_hub_keys_and_hand_values():
    preds = [{"id": "q1", "prediction_text": "the cat"}, {"id": "q2", "prediction_text": "big dog"}]
    got = load("squad").compute(predictions=preds, references=squad_refs({"q1": ["Cat"], "q2": ["small dog", "dog"]}))
    # q1: EM 1, F1 1. q2: EM 0, F1 max(1/2, 2/3) = 2/3.
    assert set(got) == {"exact_match", "f1"}
    assert strict(got) == pytest.approx({"exact_match": 50.0, "f1": 100 * (1 + 2 / 3) / 2})


def test_squad_refuses_duplicate_and_missing_ids():
    refs = squad_refs({"q1": ["cat"], "q2": ["dog"]})
    twice = [{"id": "q1", "prediction_text": "cat"}, {"id": "q1", "prediction_text": "dog"}]
    with pytest.raises(ValueError, match="'q1' occurs more than once"):
        load("squad").compute(predictions=twice, references=refs)
    other = [{"id": "q1", "prediction_text": "cat"}, {"id": "q3", "prediction_text": "dog"}]
    with pytest.raises(ValueError, match="no prediction .*'q2'"):  # the hub module would score q2 0 quietly
        load("squad").compute(predictions=other, references=refs)


# The hand-made SQuAD v2 case of tests/test_squad_v2.py: a, b, e answerable; c, d not.
V2_REFS = {"a": ["cat"], "b": ["dog"], "c": [], "d": [], "e": ["red fox"]}
V2_PREDS = {"a": "the cat", "b": "big dog", "c": "dog", "d": "mouse", "e": "fox"}
V2_DIFFS = {"a": -2.0, "b": 0.5, "c": 3.0, "d": -1.0, "e": 0.7}


def v2_predictions(diffs=V2_DIFFS):
    return [{"id": q, "prediction_text": V2_PREDS[q], "no_answer_probability": diffs[q]} for q in V2_REFS]


def test_squad_v2_loads_by_path_with_the_hub_keys_and_hand_values():
    got = load("squad_v2").compute(predictions=v2_predictions(), references=squad_refs(V2_REFS),
                                   no_answer_threshold=0.0)
    assert set(got) == HUB_SQUAD_V2_KEYS
    # Worked out in tests/test_squad_v2.py: answered a (1) and d (0); best exact at -2 (60%), best F1 at 0.7.
    assert strict(got) == pytest.approx({
        "exact": 40.0, "f1": 40.0, "total": 5, "HasAns_exact": 100 / 3, "HasAns_f1": 100 / 3, "HasAns_total": 3,
        "NoAns_exact": 50.0, "NoAns_f1": 50.0, "NoAns_total": 2, "best_exact": 60.0, "best_exact_thresh": -2.0,
        "best_f1": 100 * (10 / 3) / 5, "best_f1_thresh": 0.7})
    assert isinstance(got["total"], int) and isinstance(got["HasAns_total"], int)


def test_squad_v2_default_threshold_is_the_hubs_and_groups_appear_only_when_present():
    # Default no_answer_threshold 1.0: only c (3.0) is predicted unanswerable -> a 1, b 0, c 1, d 0, e 0.
    got = load("squad_v2").compute(predictions=v2_predictions(), references=squad_refs(V2_REFS))
    assert got["exact"] == pytest.approx(40.0) and got["f1"] == pytest.approx(100 * (1 + 2 / 3 + 1 + 2 / 3) / 5)
    answerable = {q: g for q, g in V2_REFS.items() if g}
    preds = [p for p in v2_predictions() if p["id"] in answerable]
    got = load("squad_v2").compute(predictions=preds, references=squad_refs(answerable))
    assert set(got) == HUB_SQUAD_V2_KEYS - {"NoAns_exact", "NoAns_f1", "NoAns_total"}
    strict(got)


def test_squad_v2_infinite_no_answer_scores_stay_out_of_the_json():
    # +inf marks "no valid span": never a threshold candidate, so no infinity reaches the result.
    diffs = dict(V2_DIFFS, b=float("inf"), e=float("inf"))
    got = load("squad_v2").compute(predictions=v2_predictions(diffs), references=squad_refs(V2_REFS))
    assert strict(got)["best_f1_thresh"] == -2.0  # a answered alone: 1 + 1 (c, d unanswered) of 5


# ------------------------------------------------------------------------------- loading and caching


def test_paths_come_from_the_package_and_loads_are_cached():
    assert path("squad_v2") == Path(metric_modules.__file__).resolve().parent / "squad_v2"
    assert (path("glue") / "glue.py").is_file()
    assert load_module("glue", "cola") is load_module("glue", "cola")
    assert load_module("glue", "cola") is not load_module("glue", "sst2")
    with pytest.raises(ValueError, match="unknown metric module 'bleu'"):
        path("bleu")


def test_an_edited_module_is_never_served_from_a_stale_cached_copy(tmp_path):
    # evaluate copies a script into its modules cache under the hash of the script's text.
    script = tmp_path / "probe" / "probe.py"
    script.parent.mkdir()
    body = textwrap.dedent('''
        import datasets
        import evaluate

        class Probe(evaluate.Metric):
            def _info(self):
                return evaluate.MetricInfo(description="", citation="", inputs_description="",
                                           features=datasets.Features({"predictions": datasets.Value("int64"),
                                                                       "references": datasets.Value("int64")}))

            def _compute(self, predictions, references):
                return {"version": VERSION}
        ''')
    for version in (1, 2, 1):
        script.write_text(body.replace("VERSION", str(version)))
        module = evaluate.load(str(script.parent), keep_in_memory=True)
        assert module.compute(predictions=[0], references=[0]) == {"version": version}


@pytest.mark.slow  # a fresh offline Python process
def test_modules_load_offline_from_a_copy_of_the_source_tree(tmp_path):
    """As the e2e tests run stages: PYTHONPATH=src of a temporary copy, no hub, an empty modules cache."""
    shutil.copytree(REPO / "src" / "pipeline", tmp_path / "src" / "pipeline",
                    ignore=shutil.ignore_patterns("__pycache__"))
    code = textwrap.dedent('''
        import json, pipeline
        from pipeline.metrics.modules import load_module, path
        glue = load_module("glue", "cola").compute(predictions=[1, 0, 1], references=[1, 0, 1])
        refs = [{"id": "q", "answers": {"text": ["cat"], "answer_start": [0]}}]
        squad = load_module("squad").compute(predictions=[{"id": "q", "prediction_text": "a cat"}], references=refs)
        print(json.dumps({"file": pipeline.__file__, "path": str(path("glue")), "glue": glue, "squad": squad}))
        ''')
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src"), "HF_MODULES_CACHE": str(tmp_path / "modules"),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["file"].startswith(str(tmp_path))
    assert out["path"] == str(tmp_path / "src" / "pipeline" / "metrics" / "modules" / "glue")
    assert out["glue"] == {"matthews_correlation": 1.0} and out["squad"] == {"exact_match": 100.0, "f1": 100.0}
    copies = list((tmp_path / "modules").rglob("glue.json"))  # evaluate's record of each copied script
    assert copies and all(json.loads(c.read_text())["original file path"].startswith(str(tmp_path)) for c in copies)


# ---------------------------------------------------------------- the modules give the pipeline's scores


def test_glue_module_gives_the_pipelines_scores():
    """The pipeline scores with the functions the module wraps: same values, same names."""
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    ours = glue.score(glue.TASKS["mrpc"], logits, [1, 0, 0, 0])
    theirs = load_module("glue", "mrpc").compute(predictions=logits.argmax(-1), references=[1, 0, 0, 0])
    assert ours == theirs == {"accuracy": 0.75, "f1": 2 / 3}
    stsb = glue.score(glue.spec("", 1), np.array([[0.2], [0.2], [0.2]]), [1.0, 2.0, 3.0])
    assert stsb == {"pearson": None, "spearmanr": None}


@pytest.mark.parametrize("name", sorted(glue.TASKS))
def test_every_glue_task_gets_exactly_its_metrics_from_its_config(name):
    task = glue.TASKS[name]
    assert task.config == name and set(HUB_GLUE_KEYS[name]) == set(task.metrics) and task.primary in task.metrics
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(20, task.num_labels))
    labels = rng.normal(size=20) if task.regression else rng.integers(0, task.num_labels, 20)
    assert set(glue.score(task, logits, labels)) == set(task.metrics)


QA_ROWS = [
    {"id": "q1", "title": "t", "context": "the movie was good", "question": "was the movie good ?",
     "answers": {"text": ["good"], "answer_start": [14]}},
    {"id": "q2", "title": "t", "context": "the plot was awful and bad", "question": "the plot ?",
     "answers": {"text": ["awful", "awful and bad"], "answer_start": [13, 13]}},
]


@pytest.mark.parametrize("v2", [False, True])
def test_squad_modules_give_the_qa_tasks_scores(tiny_config, tokenizer, v2):
    import pipeline.tasks.qa as qa

    torch.manual_seed(0)
    model = BertForQuestionAnswering(tiny_config)
    rows = QA_ROWS + ([{"id": "q3", "title": "t", "context": "not very great", "question": "plot ?",
                        "answers": {"text": [], "answer_start": []}}] if v2 else [])
    task = QATask(QAParams(type="qa", max_length=32, doc_stride=8, version_2_with_negative=v2))
    scores, logits = task.score(model, rows, tokenizer, 2, "cpu")[:2]
    features = qa.squad.prepare_eval_features(rows, tokenizer, 32, 8)
    start, end = qa.all_logits(model, qa.encode_features(features, False), tokenizer.pad_token_id, 2, "cpu")
    references = [{"id": r["id"], "answers": r["answers"]} for r in rows]
    if v2:
        out = qa.squad.postprocess_predictions_v2(rows, features, start, end, null_score_diff_threshold=0.0)
        records = [{"id": q, "prediction_text": t, "no_answer_probability": float(out.score_diffs[q])}
                   for q, t in out.answers.items()]
        theirs = load_module("squad_v2").compute(predictions=records, references=references)
        assert set(scores) == HUB_SQUAD_V2_KEYS
    else:
        preds = qa.squad.postprocess_predictions(rows, features, start, end)
        records = [{"id": q, "prediction_text": t} for q, t in preds.items()]
        theirs = load_module("squad").compute(predictions=records, references=references)
    assert scores == theirs and logits is None
    strict(scores)
