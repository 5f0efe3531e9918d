"""Typed, validated views of ``params.yaml``.

Each stage reads a few dotted sub-sections (``load("finetune.cls", "tasks.cls")``) and gets typed
dataclasses back. The same dotted paths are declared as the stage's ``params:`` in ``dvc.yaml`` (a test
checks both directions), so changing a value reruns exactly the stages that read it.

Unknown keys, wrong types and impossible values fail with a :class:`PipelineError` naming the key.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from pipeline.errors import PipelineError

PARAMS_FILE = "params.yaml"


# --------------------------------------------------------------------------------------------- data
@dataclass
class DataSource:
    """Where one data set comes from and how much of it to use."""

    type: Literal["text", "classification", "qa"]
    """Schema: ``text`` (MLM corpus), ``classification`` (sentence/label/idx), ``qa`` (SQuAD)."""
    source: str = "synthetic"
    """``synthetic`` (embedded generator), ``hub:<name>[/<config>]`` or a local file/directory."""
    train_size: int = 0
    """Rows generated (synthetic) or the first N rows kept (others); 0 keeps all."""
    validation_size: int = 0
    """Same for the validation split."""
    unanswerable_fraction: float = 0.0
    """Synthetic QA only: share of questions with no answer in their context (SQuAD v2 style), in [0, 1)."""

    def __post_init__(self):
        if self.train_size < 0 or self.validation_size < 0:
            raise ValueError("train_size/validation_size must be >= 0")
        if self.source == "synthetic" and (self.train_size == 0 or self.validation_size == 0):
            raise ValueError("synthetic data needs train_size > 0 and validation_size > 0")
        if not 0 <= self.unanswerable_fraction < 1:
            raise ValueError(f"unanswerable_fraction must be in [0, 1), got {self.unanswerable_fraction}")
        if self.unanswerable_fraction and (self.type != "qa" or self.source != "synthetic"):
            raise ValueError("unanswerable_fraction applies only to synthetic qa data")


@dataclass
class PrepareParams:
    """The ``prepare`` stage: data sets and tokenizer."""

    seed: int = 0
    """Seed of the synthetic generators."""
    tokenizer: str = "synthetic"
    """``synthetic`` (deterministic WordPiece vocab of the generators' words), a hub name, a local dir, or
    ``pkg:<python package>/<dir>`` (a directory inside an installed package)."""
    datasets: dict[str, DataSource] = field(default_factory=dict)
    """Data sets by name; ``corpus`` feeds pretraining, the others are fine-tuning tasks."""


# -------------------------------------------------------------------------------------------- model
@dataclass
class ArchParams:
    """A BERT architecture built from a config, or a pretrained checkpoint."""

    base: str = "scratch"
    """``scratch`` builds from the sizes below; else a hub model name, a local checkpoint dir, or
    ``pkg:<python package>/<dir>`` (a checkpoint inside an installed package)."""
    hidden_size: int = 128
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 512
    max_position_embeddings: int = 256
    seed: int = 0
    """Seed of the random initialisation (``scratch``) or of newly added heads."""

    def __post_init__(self):
        for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not divisible by num_attention_heads "
                f"{self.num_attention_heads}"
            )


@dataclass
class TrainArgs:
    """Optimisation settings shared by every training stage."""

    epochs: float = 1.0
    """Passes over the training split (fractions allowed)."""
    batch_size: int = 32
    lr: float = 5e-4
    """Peak learning rate of AdamW (linear warm-up, then linear decay)."""
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 0
    """Seed for data order, dropout and new heads."""
    l1: float = 0.0
    """Weight of an L1 penalty on the encoder's Linear weights (mean absolute value), 0 disables it:
    pushes weights towards zero so that magnitude pruning afterwards removes less of the function."""
    precision: Literal["auto", "fp32", "bf16"] = "fp32"
    """``auto``: bf16 autocast on a CUDA GPU with bf16 support, else fp32; ``bf16``: always autocast."""
    grad_accum_steps: int = 1
    """Micro-batches of ``batch_size`` (per process) summed into one optimizer step."""
    compile: bool = False
    """Run the training forward/backward through ``torch.compile`` (a GPU speed setting)."""
    group_by_length: bool = False
    """Batch examples of similar length (sorted within shuffled mega-batches) to cut padding."""
    num_workers: int = 0
    """DataLoader worker processes that collate batches; 0 collates in the training process."""
    checkpoint_every: int = 0
    """Write a resumable checkpoint every this many optimizer steps (``<out>.ckpt``); 0 disables."""

    def __post_init__(self):
        if self.epochs <= 0 or self.batch_size <= 0 or self.lr <= 0:
            raise ValueError("epochs, batch_size and lr must be > 0")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError("warmup_ratio must be in [0, 1)")
        if self.l1 < 0:
            raise ValueError("l1 must be >= 0")
        if self.grad_accum_steps < 1:
            raise ValueError("grad_accum_steps must be >= 1")
        if self.num_workers < 0 or self.checkpoint_every < 0:
            raise ValueError("num_workers and checkpoint_every must be >= 0")


@dataclass
class LaunchParams:
    """How the training stages are started (the ``launch`` section, templated into their dvc.yaml cmd)."""

    command: str = "python"
    """The launcher before the stage script: ``python`` or ``accelerate launch [--multi_gpu] --num_processes N``."""
    num_processes: int = 1
    """Processes ``command`` starts in total (all machines); a stage run under another count fails."""

    def __post_init__(self):
        if self.num_processes < 1:
            raise ValueError("num_processes must be >= 1")
        if self.num_processes > 1 and "accelerate" not in self.command and "torchrun" not in self.command:
            raise ValueError("num_processes > 1 needs command 'accelerate launch ...' (or torchrun)")


# ----------------------------------------------------------------------------------------- pretrain
@dataclass
class MlmParams:
    """Masked-LM data settings."""

    max_length: int = 64
    probability: float = 0.15
    """Fraction of tokens selected for masking (80% [MASK], 10% random, 10% kept)."""
    num_shards: int = 1
    """The corpus is split into this many shards; each run trains on its own shard."""

    def __post_init__(self):
        if not 0 < self.probability < 1:
            raise ValueError("probability must be in (0, 1)")
        if self.num_shards < 1:
            raise ValueError("num_shards must be >= 1")


@dataclass
class PretrainRun:
    """One pretraining run (a ``foreach`` item)."""

    seed: int = 0
    """Seed of this run (replaces ``pretrain.train.seed``)."""
    shard: int = 0
    """Which corpus shard this run trains on (< ``mlm.num_shards``)."""


# ------------------------------------------------------------------------------------------- merge
@dataclass
class MergeParams:
    """Weight-space merging of the pretraining runs."""

    method: str = "linear"
    """A name in :data:`pipeline.merge.METHODS`: ``linear``, ``task_arithmetic``, ``ties``, ``dare_linear``,
    ``dare_ties``, ``slerp``."""
    weights: list[float] = field(default_factory=list)
    """Per-model weights in run order; empty means equal weights."""
    scaling: float = 1.0
    """Task arithmetic, TIES, DARE: ``base + scaling * merged_task_vector``."""
    density: float = 0.5
    """TIES: fraction of each task vector's entries kept (largest magnitudes); DARE: keep probability."""
    t: float = 0.5
    """SLERP: interpolation position between the first (0) and the second (1) model."""
    seed: int = 0
    """DARE: seed of the random drop masks."""

    def __post_init__(self):
        if not 0 < self.density <= 1:
            raise ValueError("density must be in (0, 1]")
        if not 0 <= self.t <= 1:
            raise ValueError("t must be in [0, 1]")


# -------------------------------------------------------------------------------------------- tasks
# Label counts of the GLUE tasks (1 = regression); :mod:`pipeline.glue` holds the rest of each task.
GLUE_NUM_LABELS = {"cola": 2, "sst2": 2, "mrpc": 2, "qqp": 2, "stsb": 1, "mnli": 3, "qnli": 2, "rte": 2, "wnli": 2}


@dataclass
class TaskParams:
    """How a task is tokenised, modelled and scored."""

    type: Literal["classification", "qa"]
    """Must match the type of the ``prepare.datasets`` entry of the same name."""
    max_length: int = 128
    num_labels: int = 2
    doc_stride: int = 64
    """QA: overlap between the windows of a long context."""
    max_answer_length: int = 30
    """QA: longest answer span in tokens considered by post-processing."""
    n_best_size: int = 20
    glue: str = ""
    """Classification: a GLUE task name (its columns, metrics, validation splits); empty: ``sentence``/``label``
    rows scored by accuracy and F1."""
    version_2_with_negative: bool = False
    """QA: SQuAD v2 (some questions have no answer): predict "" when the null score wins, v2 metrics."""
    null_score_diff_threshold: float = 0.0
    """QA v2: predict "" when null score - best span score exceeds this (tune with ``best_f1_thresh``)."""
    text_metrics: list[Literal["bleu", "rouge"]] = field(default_factory=list)
    """QA: extra answer-text metrics (the names of :data:`pipeline.text_metrics.METRICS`)."""

    def __post_init__(self):
        if self.type != "qa" and (self.version_2_with_negative or self.text_metrics):
            raise ValueError("version_2_with_negative and text_metrics apply only to qa tasks")
        if self.type == "qa" and not 0 < self.doc_stride < self.max_length:
            raise ValueError("doc_stride must be in (0, max_length)")
        if self.glue:
            if self.glue not in GLUE_NUM_LABELS:
                raise ValueError(f"glue must be one of {sorted(GLUE_NUM_LABELS)} or empty, got {self.glue!r}")
            if self.type != "classification":
                raise ValueError(f"glue '{self.glue}' needs type: classification")
            if self.num_labels != GLUE_NUM_LABELS[self.glue]:
                raise ValueError(
                    f"glue '{self.glue}' has {GLUE_NUM_LABELS[self.glue]} label(s) (1 = regression): "
                    f"set num_labels: {GLUE_NUM_LABELS[self.glue]}, got {self.num_labels}"
                )


@dataclass
class TeacherParams:
    """A larger model trained on the task, used as the distillation teacher."""

    arch: ArchParams = field(default_factory=ArchParams)
    train: TrainArgs = field(default_factory=TrainArgs)


# -------------------------------------------------------------------------------------------- prune
@dataclass
class MagnitudeParams:
    """Unstructured one-shot magnitude pruning of the encoder's Linear weights."""

    sparsity: float = 0.5
    """Fraction of encoder Linear weights set to zero, in [0, 1)."""
    scope: Literal["global", "layer"] = "global"
    """``global`` ranks all weights together; ``layer`` prunes each matrix to the same sparsity."""

    def __post_init__(self):
        if not 0 <= self.sparsity < 1:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity}")


@dataclass
class GradualParams:
    """Gradual magnitude pruning during fine-tuning with the cubic schedule of Zhu & Gupta (2017)."""

    sparsity: float = 0.6
    """Final sparsity of the encoder's Linear weights, in [0, 1)."""
    initial_sparsity: float = 0.0
    begin: float = 0.0
    """Fraction of the training steps after which pruning starts."""
    end: float = 0.7
    """Fraction of the training steps at which the final sparsity is reached; masks are frozen after."""
    frequency: int = 10
    """Optimizer steps between mask updates."""
    scope: Literal["global", "layer"] = "global"
    train: TrainArgs = field(default_factory=lambda: TrainArgs(epochs=1.0, lr=5e-4))
    """Fine-tuning during pruning (the source model keeps training while it is pruned)."""

    def __post_init__(self):
        if not 0 <= self.initial_sparsity <= self.sparsity < 1:
            raise ValueError("need 0 <= initial_sparsity <= sparsity < 1")
        if not 0 <= self.begin < self.end <= 1:
            raise ValueError("need 0 <= begin < end <= 1")
        if self.frequency < 1:
            raise ValueError("frequency must be >= 1")


@dataclass
class MovementParams:
    """Movement pruning (Sanh et al., 2020), top-k variant: learned scores decide which weights stay."""

    sparsity: float = 0.6
    """Final sparsity of the encoder's Linear weights (per matrix), in [0, 1)."""
    begin: float = 0.0
    end: float = 0.7
    """The kept fraction follows the cubic schedule from ``begin`` to ``end`` (fractions of the steps)."""
    score_lr_scale: float = 20.0
    """Scores move this many times faster than the weights (they share the optimizer's learning rate)."""
    train: TrainArgs = field(default_factory=lambda: TrainArgs(epochs=1.0, lr=5e-4))

    def __post_init__(self):
        if not 0 <= self.sparsity < 1:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if not 0 <= self.begin < self.end <= 1:
            raise ValueError("need 0 <= begin < end <= 1")
        if self.score_lr_scale <= 0:
            raise ValueError("score_lr_scale must be > 0")


@dataclass
class MaskLearningParams(MovementParams):
    """Static mask learning: the weights stay frozen, only the scores (hence the masks) are trained.

    The learned mask alone must recover the task (as in static model pruning, SMP); the distill stage then
    fine-tunes the weights under that fixed mask with KD.
    """

    score_lr_scale: float = 100.0


@dataclass
class SoftMovementParams:
    """Soft movement pruning (Sanh et al., 2020): weights whose learned score exceeds a fixed threshold stay;
    a penalty on the scores makes the sparsity emerge (it is not set directly)."""

    threshold: float = 0.0
    """tau: a weight is kept while its score S > tau; one threshold for all matrices (global), so each
    matrix ends at its own sparsity."""
    score_init: float = 1.0
    """Initial score of every weight; above ``threshold`` so training starts from the dense model."""
    reg: float = 20.0
    """Final lambda of the loss term ``lambda * mean(sigmoid(S))``; larger gives higher sparsity."""
    begin: float = 0.0
    end: float = 0.7
    """lambda rises from 0 to ``reg`` on a cubic warm-up between these fractions of the training steps."""
    score_lr_scale: float = 100.0
    """Scores move this many times faster than the weights (they share the optimizer's learning rate)."""
    train: TrainArgs = field(default_factory=lambda: TrainArgs(epochs=1.0, lr=5e-4))

    def __post_init__(self):
        if self.score_init <= self.threshold:
            raise ValueError("score_init must be > threshold (every weight starts kept)")
        if self.reg < 0:
            raise ValueError("reg must be >= 0")
        if not 0 <= self.begin < self.end <= 1:
            raise ValueError("need 0 <= begin < end <= 1")
        if self.score_lr_scale <= 0:
            raise ValueError("score_lr_scale must be > 0")


@dataclass
class L0Params:
    """L0 regularisation with hard-concrete gates on every encoder Linear weight (Louizos et al., 2018)."""

    penalty: float = 10.0
    """lambda: weight of the expected-L0 term (expected fraction of weights kept) added to the loss."""
    target: float = 0.0
    """Target sparsity in [0, 1): if > 0 only the expected density above ``1 - target`` is penalised, so
    the gates stop closing there; 0 penalises the whole expected L0 (the sparsity follows ``penalty``)."""
    log_alpha_init: float = 3.0
    """Initial gate location; 3.0 leaves about 1% of the sampled gates at 0, so training starts dense."""
    gate_lr_scale: float = 500.0
    """The gates' log_alpha moves this many times faster than the weights (shared learning rate)."""
    train: TrainArgs = field(default_factory=lambda: TrainArgs(epochs=1.0, lr=5e-4))

    def __post_init__(self):
        if self.penalty < 0:
            raise ValueError("penalty must be >= 0")
        if not 0 <= self.target < 1:
            raise ValueError(f"target must be in [0, 1), got {self.target}")
        if self.gate_lr_scale <= 0:
            raise ValueError("gate_lr_scale must be > 0")


@dataclass
class HeadsParams:
    """Physical attention-head pruning by gradient-based importance (Michel et al., 2019)."""

    keep_heads: int = 2
    """Heads kept in every layer (1 <= keep_heads <= heads per layer)."""
    batches: int = 8
    """Training batches used to estimate head importance."""

    def __post_init__(self):
        if self.keep_heads < 1 or self.batches < 1:
            raise ValueError("keep_heads and batches must be >= 1")


@dataclass
class FFNParams:
    """Physical feed-forward neuron pruning by first-order (Taylor) importance."""

    keep_ratio: float = 0.5
    """Fraction of every layer's intermediate neurons kept, in (0, 1]."""
    batches: int = 8
    """Training batches used to estimate neuron importance."""

    def __post_init__(self):
        if not 0 < self.keep_ratio <= 1:
            raise ValueError("keep_ratio must be in (0, 1]")
        if self.batches < 1:
            raise ValueError("batches must be >= 1")


@dataclass
class LayersParams:
    """Layer dropping: keep the first and last layer, drop the least important middle layers."""

    keep_layers: int = 2
    """Encoder layers kept (>= 2 and <= the model's layer count)."""
    batches: int = 8
    """Training batches used to measure each layer's importance (loss increase when it is skipped)."""

    def __post_init__(self):
        if self.keep_layers < 2 or self.batches < 1:
            raise ValueError("keep_layers must be >= 2 and batches >= 1")


@dataclass
class NMParams:
    """Semi-structured N:M sparsity (2:4 for sparse tensor cores) of the encoder's Linear weights."""

    n: int = 2
    """Weights kept in every group."""
    m: int = 4
    """Group size: consecutive weights along the input dimension."""

    def __post_init__(self):
        if not 0 < self.n < self.m:
            raise ValueError("n and m must satisfy 0 < n < m")


# ------------------------------------------------------------------------------------------ distill
@dataclass
class KDParams:
    """Knowledge distillation: logit KD plus optional hidden-state and attention-map terms."""

    temperature: float = 2.0
    alpha: float = 0.5
    """Weight of the logit KD term; ``1 - alpha`` weighs the hard-label loss."""
    hidden_weight: float = 0.0
    """Weight of the hidden-state MSE between mapped layers (0 disables it)."""
    attention_weight: float = 0.0
    """Weight of the attention-map MSE (head-averaged probabilities) between mapped layers (0 disables it)."""
    layer_map: list[int] = field(default_factory=list)
    """Teacher layer (1-based) matched to each student layer; empty maps them uniformly."""

    def __post_init__(self):
        if self.temperature <= 0:
            raise ValueError("temperature must be > 0")
        if not 0 <= self.alpha <= 1:
            raise ValueError("alpha must be in [0, 1]")
        if self.hidden_weight < 0 or self.attention_weight < 0:
            raise ValueError("hidden_weight and attention_weight must be >= 0")


# ----------------------------------------------------------------------------------------- quantize
@dataclass
class QuantizeParams:
    """Post-training quantization."""

    scheme: Literal["dynamic_int8", "weight_int8", "weight_int4", "fp16", "bf16", "fp8"] = "dynamic_int8"
    """``dynamic_int8``: int8 weights and per-batch int8 activations with CPU int8 kernels. ``weight_int8``,
    ``weight_int4``: group-wise weight-only storage, dequantized on load. ``fp16``, ``bf16``: casts.
    ``fp8``: float8_e4m3fn weights with per-row scales, dequantized on load."""
    source: str = "distill-heads"
    """The model variant (``models/<task>/<source>``) that is quantized."""
    group_size: int = 32
    """Weight-only schemes: consecutive input weights sharing one scale and zero point."""
    error_batches: int = 4
    """Validation batches (of 32) on which the quantized logits are compared with the source's."""

    def __post_init__(self):
        if self.group_size < 2 or self.group_size % 2:
            raise ValueError("group_size must be an even number >= 2")
        if self.error_batches < 1:
            raise ValueError("error_batches must be >= 1")


# ----------------------------------------------------------------------------------------- evaluate
@dataclass
class EvaluateParams:
    """Measurement settings."""

    batch_size: int = 64
    """Batch size for task metrics."""
    latency_batch_size: int = 32
    """The large batch timed for throughput (batch 1 is always timed too)."""
    latency_warmup: int = 3
    """Untimed forward calls per model and batch before timing."""
    latency_repeats: int = 20
    """Timed forward calls per model and batch (variant and baseline interleaved)."""
    threads: int = 1
    """CPU threads during latency measurement (fixed so numbers compare across variants)."""

    def __post_init__(self):
        if min(self.batch_size, self.latency_batch_size, self.latency_repeats, self.threads) < 1:
            raise ValueError("batch sizes, latency_repeats and threads must be >= 1")
        if self.latency_warmup < 0:
            raise ValueError("latency_warmup must be >= 0")


# --------------------------------------------------------------------------------------------- root
@dataclass
class Params:
    """The whole ``params.yaml``; stages load only the sub-sections they declare."""

    prepare: PrepareParams
    model: ArchParams
    pretrain: dict[str, Any]  # typed per key below: mlm, train, runs
    merge: MergeParams
    tasks: dict[str, TaskParams]
    finetune: dict[str, TrainArgs]
    teacher: dict[str, TeacherParams]
    prune: dict[str, Any]  # magnitude, heads, ffn, layers, nm
    distill: dict[str, Any]  # kd, train
    quantize: QuantizeParams
    evaluate: EvaluateParams
    launch: LaunchParams


# Types of sub-sections whose parent is a heterogeneous mapping (typed by key, not by value).
_KEYED: dict[str, Any] = {
    "pretrain.mlm": MlmParams,
    "pretrain.train": TrainArgs,
    "pretrain.runs": dict[str, PretrainRun],
    "prune.magnitude": MagnitudeParams,
    "prune.heads": HeadsParams,
    "prune.ffn": FFNParams,
    "prune.layers": LayersParams,
    "prune.nm": NMParams,
    "prune.gradual": GradualParams,
    "prune.movement": MovementParams,
    "prune.mask_learning": MaskLearningParams,
    "prune.soft_movement": SoftMovementParams,
    "prune.l0": L0Params,
    "distill.kd": KDParams,
    "distill.train": dict[str, TrainArgs],
}


def _type_at(path: str) -> Any:
    """The declared type of the value at a dotted path, e.g. ``finetune.cls`` -> TrainArgs."""
    parts = path.split(".")
    tp: Any = Params
    for i, part in enumerate(parts):
        prefix = ".".join(parts[: i + 1])
        if prefix in _KEYED:
            tp = _KEYED[prefix]
        elif dataclasses.is_dataclass(tp):
            hints = typing.get_type_hints(tp)
            if part not in hints:
                raise PipelineError(f"{PARAMS_FILE}: unknown section '{prefix}'")
            tp = hints[part]
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        else:
            raise PipelineError(f"{PARAMS_FILE}: '{prefix}' is not a section")
    return tp


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML value to ``tp`` strictly; ``key`` names it in errors."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise PipelineError(f"{PARAMS_FILE}: '{key}' must be a mapping, got {type(value).__name__}")
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        unknown = sorted(set(value) - names)
        if unknown:
            raise PipelineError(
                f"{PARAMS_FILE}: unknown key '{key}.{unknown[0]}' (known: {', '.join(sorted(names))})"
            )
        kwargs = {k: _convert(v, hints[k], f"{key}.{k}") for k, v in value.items()}
        try:
            return tp(**kwargs)
        except TypeError as err:  # a required field is missing
            raise PipelineError(f"{PARAMS_FILE}: '{key}': {err}") from None
        except ValueError as err:
            raise PipelineError(f"{PARAMS_FILE}: '{key}': {err}") from None
    if origin is dict:
        if not isinstance(value, dict):
            raise PipelineError(f"{PARAMS_FILE}: '{key}' must be a mapping, got {type(value).__name__}")
        val_tp = typing.get_args(tp)[1]
        return {str(k): _convert(v, val_tp, f"{key}.{k}") for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise PipelineError(f"{PARAMS_FILE}: '{key}' must be a list, got {type(value).__name__}")
        item_tp = typing.get_args(tp)[0]
        return [_convert(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise PipelineError(f"{PARAMS_FILE}: '{key}' must be one of {list(allowed)}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"unions are not supported in params ({key})")
    if tp is float:
        # YAML reads 5e-4 as a string (it needs a dot: 5.0e-4); accept both spellings.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is bool or tp is str:
        if isinstance(value, tp):
            return value
    else:
        raise TypeError(f"unsupported params type {tp} at {key}")
    raise PipelineError(
        f"{PARAMS_FILE}: '{key}' must be {tp.__name__}, got {type(value).__name__} {value!r}"
    )


def read_yaml(path: str | os.PathLike = PARAMS_FILE) -> dict:
    """The raw params mapping; a missing or malformed file is a :class:`PipelineError`."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found (run stages from the repository root)") from None
    except yaml.YAMLError as err:
        raise PipelineError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise PipelineError(f"{path}: must be a mapping of sections")
    return data


def lookup(data: dict, path: str) -> Any:
    """The raw value at a dotted path, or a :class:`PipelineError` naming the missing key."""
    node: Any = data
    for i, part in enumerate(path.split(".")):
        if not isinstance(node, dict) or part not in node:
            missing = ".".join(path.split(".")[: i + 1])
            raise PipelineError(f"{PARAMS_FILE}: missing key '{missing}'")
        node = node[part]
    return node


def load(*paths: str, file: str | os.PathLike = PARAMS_FILE) -> list[Any]:
    """Typed values of the given dotted sub-sections of ``params.yaml``, in order.

    Example: ``train, task = load("finetune.cls", "tasks.cls")``.
    """
    data = read_yaml(file)
    return [_convert(lookup(data, p), _type_at(p), p) for p in paths]


def leaves(data: dict, path: str) -> set[str]:
    """All dotted leaf keys under ``path`` in a raw params mapping (the path itself for a scalar)."""
    node = lookup(data, path)
    if not isinstance(node, dict):
        return {path}
    out: set[str] = set()
    for key in node:
        out |= leaves(data, f"{path}.{key}")
    return out


def as_dict(value: Any) -> Any:
    """A JSON-able view of loaded params (for ``pipeline.json``)."""
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: as_dict(v) for k, v in value.items()}
    return value
