"""Pruning methods, one module per method, registered by name (``prune.<method>`` in ``params.yaml``).

- ``magnitude``: unstructured one-shot magnitude pruning of the encoder's Linear weights.
- ``gradual``: magnitude pruning while fine-tuning, sparsity raised on the cubic schedule of Zhu & Gupta
  (2017), masks frozen once the target is reached.
- ``movement``: movement pruning (top-k of learned scores) while fine-tuning (Sanh et al., 2020).
- ``mask_learning``: the same learned top-k masks with the weights frozen (static mask learning).
- ``soft_movement``: movement scores against a fixed threshold, with a score penalty whose weight sets the
  sparsity (Sanh et al., 2020).
- ``l0``: hard-concrete gates with an expected-L0 penalty while fine-tuning (Louizos et al., 2018).
- ``lottery``: iterative magnitude pruning with the survivors rewound to an early point of training between
  rounds (lottery tickets: Frankle & Carbin, 2019; rewinding: Frankle et al., 2020).
- ``nm``: semi-structured N:M masks (2:4 by default) along the input dimension of the encoder's Linears.
- ``heads``: physical attention-head pruning by gradient-based importance (Michel et al., 2019).
- ``ffn``: physical feed-forward neuron pruning by first-order (Taylor) importance.
- ``heads_ffn``: ``heads`` and ``ffn`` in one step, both importances measured on the unpruned model.
- ``layers``: layer dropping; the first and last layers stay, the middle layers whose removal raises the
  loss least go.

Zeroing methods set weights to zero in place (the shapes stay; the artifact is stored compactly and
distillation keeps the zeros); structural methods shrink the tensors and record the new shapes in the config.
Shared pieces: :mod:`.masks` (masks, sparsity, the cubic schedule), :mod:`.importance` (head, neuron and
layer importance), :mod:`.structured` (keeping the top heads or neurons), :mod:`.scores` (learned score masks). :mod:`.sweep` sets a method's registered ``target``
(its main knob) to one value of a sweep point (``prune.sweep``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from pipeline.core.errors import PipelineError
from pipeline.core.registry import Registry
from pipeline.data.features import Batch, batches, collate
from pipeline.models.compact import compact_model
from pipeline.models.store import write_artifact

LossFn = Callable[[torch.nn.Module, Batch], torch.Tensor]


IMPORTANCE_BATCH_SIZE = 32
"""Examples per importance batch of the one-shot structured methods (``prune.<method>.batches`` counts these)."""


@dataclass
class PruneContext:
    """What a method may use besides the model and its params."""

    data: list[Batch]
    """Training batches (importance estimates of one-shot structured methods), on the model's device."""
    loss_fn: LossFn
    """``(model, batch) -> task loss``."""
    train: Callable | None = None
    """For methods that prune while fine-tuning: ``(model, make_hook, loss_fn=None) -> {"history", "pruner"}``
    fine-tunes ``model`` on the task, building its after-step hook with ``make_hook(total_steps)``; methods with
    a penalty pass ``loss_fn`` (task loss plus their term) in place of the task loss
    (:func:`pipeline.train.supervised.trainer`)."""
    device: torch.device | None = None
    """Where the method works: :func:`prune_` moves the model there first (importance, masks and training on
    the run's GPU when there is one); None leaves the model where it is."""

    @classmethod
    def for_task(cls, task, rows: Sequence[dict], tokenizer, examples: int = 512,
                 batch_size: int = IMPORTANCE_BATCH_SIZE, device: torch.device | None = None) -> PruneContext:
        """Batches of the first ``examples`` training features of ``task`` and its loss (no training).

        Only the first ``examples`` rows are encoded, not the split: every row gives at least one feature (QA:
        one per context window) and a row's features do not depend on the other rows, so these are the first
        ``examples`` features of the whole split, as before. ``examples=0`` encodes nothing (``data=[]``).

        Args:
            rows: the train split's rows (or only its first ``examples``).
            device: where the batches go (the model's); None leaves them on the CPU.
        """
        feats = task.train_features(rows[:examples], tokenizer)[:examples] if examples and len(rows) else []
        data = batches(feats, batch_size, lambda f: collate(f, tokenizer.pad_token_id))
        return cls([{k: v.to(device) for k, v in b.items()} if device is not None else b for b in data], task.loss,
                   device=device)


class EncodedOnce:
    """A task whose splits are read once and whose rows are encoded once: a training pruning stage counts its
    steps, trains and scores (lottery: every round) on the same splits, and each reads and encodes them
    through this view (:func:`pipeline.train.supervised.trainer`); every other attribute is the task's own.

    The features are shared between those uses: callers only read them (the training loop indexes them,
    collate functions build new tensors).
    """

    def __init__(self, task):
        self.task = task
        self._rows: dict[tuple[str, str], Any] = {}
        self._features: dict[tuple[int, int], tuple[Any, Any, Any]] = {}

    def __getattr__(self, name: str):
        return getattr(self.__dict__["task"], name)

    def rows(self, data_dir: str | os.PathLike, split: str):
        """The task's rows of ``split``, read on the first call."""
        key = (str(data_dir), split)
        if key not in self._rows:
            self._rows[key] = self.task.rows(data_dir, split)
        return self._rows[key]

    def train_features(self, rows, tokenizer):
        """The task's training features of ``rows``, encoded on the first call with these rows and tokenizer."""
        key = (id(rows), id(tokenizer))  # ids stay unique: the entry keeps both alive
        if key not in self._features:
            self._features[key] = (rows, tokenizer, self.task.train_features(rows, tokenizer))
        return self._features[key][2]


PruneFn = Callable[[torch.nn.Module, Any, PruneContext], dict]
CheckFn = Callable[[torch.nn.Module, Any], None]


@dataclass(frozen=True)
class Method:
    """A registered pruning method and what callers need to know about it."""

    name: str
    params: type
    """Its settings, read from ``prune.<name>``."""
    fn: PruneFn
    """``(model, params, context) -> report``: prunes ``model`` in place, returns what it did (JSON-able)."""
    zeroing: bool
    """True: zeros weights in place, shapes unchanged (stored compactly); False: structural (shapes shrink)."""
    trains: bool = False
    """True: prunes while fine-tuning (needs ``context.train``; its schedules cannot resume from checkpoints)."""
    check: CheckFn | None = None
    """``(model, params) -> None``: raises a :class:`PipelineError` naming the key when the params cannot apply
    to this model (more heads kept than it has...); run before any data is prepared or training starts."""
    target: str | None = None
    """The field of :attr:`params` that sets how much is pruned (e.g. ``sparsity``, ``keep_heads``): the value a
    sweep point sets (``prune.sweep``, :mod:`.sweep`). None: the method cannot be swept."""
    batches: str | None = None
    """The field of :attr:`params` holding how many training batches (of :data:`IMPORTANCE_BATCH_SIZE`) the
    method reads from :attr:`PruneContext.data`; None: it reads none (the stage then encodes no rows for it)."""

    def examples(self, params: Any) -> int:
        """Training examples the method's importance batches need: ``batches * IMPORTANCE_BATCH_SIZE`` (0: none)."""
        return getattr(params, self.batches) * IMPORTANCE_BATCH_SIZE if self.batches else 0


METHODS: Registry[Method] = Registry("pipeline.prune", "pruning method")


def register(name: str, params: type, zeroing: bool, trains: bool = False, check: CheckFn | None = None,
             target: str | None = None, batches: str | None = None) -> Callable[[PruneFn], PruneFn]:
    """Register the decorated function as pruning method ``name`` (call it from ``pipeline/prune/<name>.py``);
    ``check`` is its early check of the params against the model (see :attr:`Method.check`), ``target`` names
    the field of ``params`` a sweep sets (:attr:`Method.target`), ``batches`` the field with its number of
    importance batches (:attr:`Method.batches`)."""

    def add(fn: PruneFn) -> PruneFn:
        for role, field_name in (("target", target), ("batches", batches)):
            if field_name is not None and field_name not in {f.name for f in dataclasses.fields(params)}:
                raise ValueError(f"pruning method '{name}': {role} '{field_name}' is not a field of {params.__name__}")
        METHODS.add(name, Method(name, params, fn, zeroing, trains, check, target, batches), fn.__module__)
        return fn

    return add


def write_pruned(out: str | os.PathLike, model: torch.nn.Module, tokenizer_src: str | os.PathLike, meta: dict,
                 compact: bool) -> None:
    """:func:`pipeline.models.store.write_artifact` with the sparse matrices in compact storage when ``compact``
    (a zeroing method's result: the file size then follows the sparsity; distillation keeps it so)."""
    tensors, meta = compact_model(model.cpu(), meta) if compact else (None, meta)
    write_artifact(out, model, tokenizer_src, meta, tensors)


def prune_(model: torch.nn.Module, method: Method | str, params: Any, context: PruneContext) -> dict:
    """Prune ``model`` in place with ``method`` (an entry or a registered name); returns its report for
    ``pipeline.json``.

    Raises:
        PipelineError: an unknown method, or a method that trains was given no ``context.train``.
    """
    if isinstance(method, str):
        method = METHODS.get(method)
    check_method(model, method, params)
    if method.trains and context.train is None:
        raise PipelineError(f"prune.{method.name} prunes while training: the stage must provide training")
    if context.device is not None:
        model.to(context.device)
    return method.fn(model, params, context)


def check_method(model: torch.nn.Module, method: Method, params: Any) -> None:
    """The method's check of ``params`` against ``model`` (a no-op for methods without one); stages call it
    right after loading the model, before preparing data or training."""
    if method.check is not None:
        method.check(model, params)
