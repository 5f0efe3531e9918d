"""Every model family through the whole pipeline, in-process on tiny random models.

For each family: base -> MLM pretraining (two runs) -> merge -> fine-tuning (classification and QA) ->
teacher -> every pruning method -> distillation (logit + hidden-state + attention-map KD) -> every
quantization scheme -> evaluation, each artifact written, reloaded with the pipeline's loader and compared
with the in-memory model's outputs. Structurally pruned artifacts are also loaded by plain transformers
from their own modeling file (one subprocess per family, without the project on ``sys.path``).
ALBERT's shared layers refuse structural pruning with a clear error; an ALBERT checkpoint with one group
per layer takes it.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from family_kit import FAMILY_TOKENIZER, TINY, make_data, make_tokenizer
from pipeline import tasks
from pipeline.artifacts import load_model
from pipeline.config.args import TrainArgs
from pipeline.core.errors import PipelineError
from pipeline.data.tokenizer import load_tokenizer
from pipeline.distill.kd import KDParams, distill_student
from pipeline.evaluation.facts import model_facts
from pipeline.merge import merge_states
from pipeline.models import families
from pipeline.models.build import ArchParams, init_model, with_head
from pipeline.models.remote_code import FILE as REMOTE_FILE
from pipeline.models.remote_code import is_structurally_pruned
from pipeline.models.store import save_model, write_artifact
from pipeline.models.structure import heads_per_layer, intermediate_per_layer
from pipeline.pretrain.mlm import MlmParams, pretrain
from pipeline.prune import METHODS, PruneContext, prune_, write_pruned
from pipeline.quantize import SCHEMES, quantize_model
from pipeline.tasks.base import Task
from pipeline.tasks.classification import ClassificationParams
from pipeline.tasks.qa import QAParams
from pipeline.train.supervised import train_task, trainer

CPU = torch.device("cpu")
TRAIN = TrainArgs(epochs=1, batch_size=32, lr=2e-3, seed=0)
STRUCTURAL = ("heads", "ffn", "layers")
# Per-method knobs small enough for a 3-layer, 4-head model (the rest are the methods' defaults).
PRUNE_PARAMS = {"heads": {"keep_heads": 2, "batches": 1}, "ffn": {"keep_ratio": 0.5, "batches": 1},
                "layers": {"keep_layers": 2, "batches": 1}, "magnitude": {"sparsity": 0.5}}
# Logit tolerance of each quantization scheme against the float model it came from (tiny random models).
QUANT_TOL = {"dynamic_int8": 0.3, "weight_int8": 0.05, "weight_int4": 0.5, "fp16": 0.01, "bf16": 0.1, "fp8": 0.3}
FAMILIES = sorted(FAMILY_TOKENIZER) + ["albert-unshared"]


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    tokenizers = {s: make_tokenizer(root / "tok" / s, s) for s in sorted(set(FAMILY_TOKENIZER.values()))}
    return {"root": root, "data": make_data(root / "data"), "tokenizers": tokenizers, "remote": []}


def task_of(name: str) -> Task:
    if name == "cls":
        return tasks.get(ClassificationParams(max_length=32))
    return tasks.get(QAParams(max_length=64, doc_stride=16, max_answer_length=8))


def probe(model: torch.nn.Module, feats: list[dict], pad_id: int) -> tuple[torch.Tensor, ...]:
    """The model's task logits on a fixed batch of features (eval mode, no grad)."""
    from pipeline.data.features import collate

    batch = collate(feats, pad_id)
    batch = {k: v for k, v in batch.items() if k not in ("labels", "start_positions", "end_positions")}
    model.eval()
    with torch.no_grad():
        out = model(**families.model_inputs(model, batch))
    return (out.start_logits, out.end_logits) if hasattr(out, "start_logits") else (out.logits,)


def roundtrip(model, path: Path, feats, pad_id: int, atol: float = 0.0) -> torch.nn.Module:
    """Reload the artifact at ``path`` and check it computes what ``model`` computes."""
    loaded, meta = load_model(path)
    for a, b in zip(probe(model, feats, pad_id), probe(loaded, feats, pad_id)):
        assert torch.isfinite(b).all(), path
        torch.testing.assert_close(b, a, atol=atol, rtol=0, msg=lambda m: f"{path}: {m}")
    return loaded


def albert_unshared_checkpoint(root: Path, vocab_size: int, pad_id: int) -> Path:
    """An ALBERT checkpoint with one layer group per layer (nothing shared), saved as a user would."""
    from transformers import AlbertConfig, AlbertModel

    torch.manual_seed(0)
    config = AlbertConfig(vocab_size=vocab_size, embedding_size=16, num_hidden_groups=TINY["num_hidden_layers"],
                          pad_token_id=pad_id, **TINY)
    AlbertModel(config).save_pretrained(root / "albert-unshared")
    return root / "albert-unshared"


def build_base(family: str, kit, out: Path, tokenizer) -> tuple[torch.nn.Module, str]:
    """The base MLM model of ``family`` (scratch, or the unshared ALBERT checkpoint), written to ``out``."""
    if family == "albert-unshared":
        arch = ArchParams(base=str(albert_unshared_checkpoint(kit["root"], len(tokenizer), tokenizer.pad_token_id)))
    else:
        arch = ArchParams(type=family, **TINY)
    model = init_model(arch, "mlm", len(tokenizer), tokenizer.pad_token_id)
    write_artifact(out, model, kit["tokenizers"][FAMILY_TOKENIZER[family.split("-unshared")[0]]],
                   {"stage": "base", "head": "mlm", "format": "dense"})
    return model, model.config.model_type


def pretrained_and_merged(base, art: Path, tok_dir: Path, data: Path, tokenizer) -> torch.nn.Module:
    """Two MLM runs on the two corpus shards, merged linearly; each artifact reloaded and compared."""
    from pipeline.data.features import encode_text
    from pipeline.data.io import read_split

    mlm = MlmParams(max_length=32)
    rows, valid = read_split(data / "corpus", "train", "text"), read_split(data / "corpus", "validation", "text")
    feats = encode_text(valid[:4], tokenizer, 32)
    runs = []
    for seed in (1, 2):
        model = copy.deepcopy(base)
        history = pretrain(model, rows[seed - 1::2], valid, tokenizer, mlm, TrainArgs(epochs=1, batch_size=16, seed=seed),
                           CPU, f"pretrain {seed}")
        assert history[-1]["perplexity"] > 1
        write_artifact(art / f"pretrain-{seed}", model, tok_dir, {"stage": "pretrain", "head": "mlm", "format": "dense"})
        runs.append(roundtrip(model, art / f"pretrain-{seed}", feats, tokenizer.pad_token_id))
    merged = copy.deepcopy(runs[0])
    merged.load_state_dict(merge_states([r.state_dict() for r in runs], ["a", "b"], "linear", None, [], base.state_dict()))
    write_artifact(art / "merged", merged, tok_dir, {"stage": "merge", "head": "mlm", "format": "dense"})
    return roundtrip(merged, art / "merged", feats, tokenizer.pad_token_id)


def prune_all(name: str, finetuned, task: Task, data: Path, art: Path, tok_dir: Path, tokenizer, feats,
              methods) -> dict[str, torch.nn.Module]:
    """Every method of ``methods`` on a copy of ``finetuned``; structurally refused ones return no model."""
    pruned = {}
    rows = task.rows(data / name, "train")
    for method_name in methods:
        method = METHODS.get(method_name)
        params = method.params(**PRUNE_PARAMS.get(method_name, {}))
        if method.trains:
            params.train = TrainArgs(epochs=1, batch_size=32, lr=1e-3, seed=0)
        model = copy.deepcopy(finetuned)
        context = PruneContext.for_task(task, rows, tokenizer, examples=32)
        if method.trains:
            context.train = trainer(task, data / name, tokenizer, params.train, CPU, f"prune {method_name}")
        if not method.zeroing and finetuned.config.model_type == "albert" and finetuned.config.num_hidden_groups == 1:
            with pytest.raises(PipelineError, match="ALBERT shares layer weights"):
                prune_(model, method, params, context)
            continue
        report = prune_(model, method, params, context)
        assert json.dumps(report)  # JSON-able for pipeline.json
        out = art / f"{name}-prune-{method_name}"
        write_pruned(out, model, tok_dir, {"stage": "prune", "head": task.head, "format": "dense",
                                           "method": method_name}, compact=method.zeroing)
        roundtrip(model, out, feats, tokenizer.pad_token_id)
        pruned[method_name] = model
    return pruned


def check_structure(family: str, pruned: dict[str, torch.nn.Module], art: Path, name: str, kit, feats, pad_id) -> None:
    """Pruned shapes as asked; structurally pruned artifacts carry modeling code and an auto_map."""
    if "heads" not in pruned:
        return
    assert heads_per_layer(pruned["heads"]) == [2] * TINY["num_hidden_layers"]
    assert intermediate_per_layer(pruned["ffn"]) == [TINY["intermediate_size"] // 2] * TINY["num_hidden_layers"]
    assert len(families.of(pruned["layers"]).layers(pruned["layers"])) == 2
    for method in ("heads", "ffn"):
        expect_remote_code(kit, art / f"{name}-prune-{method}", name, pruned[method], feats, pad_id)
    # Layer dropping gives a plain shallower model: no modeling code needed.
    assert not (art / f"{name}-prune-layers" / REMOTE_FILE).exists()


def expect_remote_code(kit, path: Path, name: str, model, feats, pad_id: int) -> None:
    """The artifact at ``path`` names its modeling file in ``auto_map``; queue it (with the inputs and
    ``model``'s outputs) for the plain-transformers check."""
    config = json.loads((path / "config.json").read_text())
    assert (path / REMOTE_FILE).is_file() and "AutoConfig" in config["auto_map"], path
    model_in = families.model_inputs(model, {k: torch.tensor([feats[0][k]]) for k in feats[0]
                                             if k not in ("labels", "start_positions", "end_positions")})
    outs = probe(model, feats[:1], pad_id)
    save_file({**{f"in_{k}": v for k, v in model_in.items()}, **{f"out{i}": t.contiguous() for i, t in enumerate(outs)}},
              str(path / "probe.safetensors"))
    kit["remote"].append((str(path), name))


def distill_and_quantize(family, name, student, teacher, task, data, art, tok_dir, tokenizer, feats, schemes,
                         kit) -> None:
    """KD with every term into the pruned student, then every quantization scheme of the result."""
    kd = KDParams(hidden_weight=1.0, attention_weight=1.0)
    history, scores = distill_student(student, teacher, task, kd, data / name, tokenizer,
                                      TrainArgs(epochs=1, batch_size=32, lr=1e-3, seed=0), CPU, f"distill {name}")
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in history)
    out = art / f"{name}-distill"
    write_pruned(out, student, tok_dir, {"stage": "distill", "head": task.head, "format": "dense"}, compact=False)
    # Attention-map KD ran the student with eager attention; the reloaded one runs sdpa (same maths).
    roundtrip(student, out, feats, tokenizer.pad_token_id, atol=1e-5)
    if is_structurally_pruned(student.config):
        expect_remote_code(kit, out, name, student, feats, tokenizer.pad_token_id)  # a distilled pruned student
    reference = probe(student, feats, tokenizer.pad_token_id)
    for scheme in schemes:
        knobs = {"group_size": 8} if scheme.startswith("weight_") else {}  # pruned widths are multiples of 8
        tensors, description = quantize_model(student, scheme, SCHEMES.get(scheme).params(**knobs))
        q = art / f"{name}-quantize-{scheme}"
        q.mkdir()
        save_model(q, student, tok_dir, {"stage": "quantize", "head": task.head, "format": scheme,
                                         "quantization": description}, tensors=tensors)
        assert not (q / REMOTE_FILE).exists() and "auto_map" not in json.loads((q / "config.json").read_text())
        loaded, _ = load_model(q)
        for a, b in zip(reference, probe(loaded, feats, tokenizer.pad_token_id)):
            assert torch.isfinite(b).all()
            assert float((a - b).abs().max()) < QUANT_TOL[scheme] * max(1.0, float(a.abs().max())), (family, scheme)
        facts, layers = model_facts(q)
        assert facts["params_attention"] > 0 and facts["params_ffn"] > 0 and facts["quantization"] == scheme
        assert len(layers) == student.config.num_hidden_layers or family.startswith("albert")


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_family_through_the_pipeline(family, kit, tmp_path):
    kind = family.split("-unshared")[0]
    tok_dir = kit["tokenizers"][FAMILY_TOKENIZER[kind]]
    tokenizer, data, art = load_tokenizer(tok_dir), kit["data"], tmp_path
    base, model_type = build_base(family, kit, art / "base", tokenizer)
    assert model_type == kind and families.of(base).model_type == kind
    merged = pretrained_and_merged(base, art, tok_dir, data, tokenizer)
    for name in ("cls", "qa"):
        task = task_of(name)
        feats = task.train_features(task.rows(data / name, "validation"), tokenizer)[:4]
        if "token_type_ids" not in tokenizer.model_input_names:
            assert all("token_type_ids" not in f for f in feats)
        model = with_head(merged, task.head, task.num_labels, 0)
        _, scores = train_task(model, task, data / name, tokenizer, TRAIN, CPU, f"finetune {name}")
        write_artifact(art / f"{name}-finetune", model, tok_dir, {"stage": "finetune", "head": task.head, "format": "dense"})
        finetuned = roundtrip(model, art / f"{name}-finetune", feats, tokenizer.pad_token_id)
        assert set(scores) >= ({"accuracy"} if name == "cls" else {"exact_match", "f1"})
        teacher = copy.deepcopy(finetuned)  # the merged encoder trained again: a same-family teacher
        train_task(teacher, task, data / name, tokenizer, TrainArgs(epochs=1, batch_size=32, lr=1e-3, seed=1), CPU, "teacher")
        methods = sorted(METHODS.all()) if name == "cls" else [*STRUCTURAL, "magnitude"]
        pruned = prune_all(name, finetuned, task, data, art, tok_dir, tokenizer, feats, methods)
        check_structure(family, pruned, art, name, kit, feats, tokenizer.pad_token_id)
        student = pruned.get("heads") or pruned["magnitude"]
        schemes = sorted(SCHEMES.all()) if name == "cls" else ["dynamic_int8"]
        distill_and_quantize(family, name, student, teacher, task, data, art, tok_dir, tokenizer, feats, schemes, kit)
        metrics = task.evaluate(load_model(art / f"{name}-distill")[0], data / name, tokenizer, 16, CPU).scores
        assert set(metrics) >= ({"accuracy", "f1"} if name == "cls" else {"exact_match", "f1"})
        facts, _ = model_facts(art / f"{name}-distill")
        tied = set(getattr(student, "_tied_weights_keys", None) or {})
        stored = {k: v for k, v in student.state_dict().items() if v.is_floating_point() and k not in tied}
        assert facts["params"] == sum(v.numel() for v in stored.values())
        assert facts["params_embeddings"] > 0 and facts["params_head"] > 0
    # This family's heads/FFN-pruned artifacts load with plain transformers (checked here, not in a later test
    # that would depend on this one having run first).
    mine = [(p, t) for p, t in kit["remote"] if Path(p).is_relative_to(art)]
    if family == "albert":  # one shared layer group: no structural method applies, so no modeling code
        assert mine == []
    else:
        load_with_plain_transformers(mine, kit["root"])


PLAIN_LOAD = (
    "import importlib.util, os, sys\n"
    # An editable install of the project puts its src/ on sys.path through a .pth file: take it off.
    "sys.path[:] = [p for p in sys.path if not os.path.isdir(os.path.join(p, 'pipeline', 'models'))]\n"
    "assert importlib.util.find_spec('pipeline') is None, sys.path\n"
    "import torch\n"
    "from safetensors.torch import load_file\n"
    "from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification\n"
    "for path, task in (line.split('\\t') for line in sys.stdin.read().splitlines()):\n"
    "    auto = AutoModelForSequenceClassification if task == 'cls' else AutoModelForQuestionAnswering\n"
    "    model = auto.from_pretrained(path, trust_remote_code=True).eval()\n"
    "    probe = load_file(path + '/probe.safetensors')\n"
    "    with torch.no_grad():\n"
    "        out = model(**{k[3:]: v for k, v in probe.items() if k.startswith('in_')})\n"
    "    got = (out.start_logits, out.end_logits) if task == 'qa' else (out.logits,)\n"
    "    for i, g in enumerate(got):\n"
    "        diff = float((g - probe[f'out{i}']).abs().max())\n"
    "        assert diff < 1e-5, (path, i, diff)\n"
    "    print('ok', type(model).__name__, path)\n"
)


def load_with_plain_transformers(remote: list[tuple[str, str]], root: Path) -> None:
    """Every heads/FFN-pruned artifact of ``remote`` (``(path, task)`` pairs) loads through
    ``AutoModelFor...from_pretrained(dir, trust_remote_code=True)`` in a Python without the project on its path,
    and computes the logits stored next to it (``probe.safetensors``)."""
    assert remote, "no structurally pruned artifact to load"
    lines = "\n".join(f"{p}\t{t}" for p, t in remote)
    proc = subprocess.run([sys.executable, "-I", "-c", PLAIN_LOAD], input=lines, capture_output=True, text=True,
                          cwd=root, env={"PATH": "/usr/bin:/bin", "HOME": str(root), "HF_HUB_OFFLINE": "1",
                                         "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("ok Pruned") == len(remote)
