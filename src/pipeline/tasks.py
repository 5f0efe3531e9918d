"""Task adapters: data loading, training features, logits and metrics per task type."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pipeline import glue, metrics, qa, text_metrics
from pipeline.data.io import read_split
from pipeline.errors import PipelineError
from pipeline.features import Batch, Feature, batches, collate, encode_classification, encode_qa_features
from pipeline.params import TaskParams, TrainArgs
from pipeline.train import LossFn, RunFiles, fit, total_steps


def rows(task: TaskParams, data_dir: str | Path, split: str) -> list[dict]:
    """The task's prepared rows for ``split``, checked against the task type's columns (and for
    classification against the GLUE task's columns and label range)."""
    if task.type != "classification":
        return read_split(data_dir, split, task.type)
    g = glue.spec(task)
    split_rows = read_split(data_dir, split, task.type, g.columns if task.glue else None)
    glue.check(g, split_rows, str(Path(data_dir) / f"{split}.jsonl"))
    return split_rows


def _encode(task: TaskParams, split_rows: list[dict], tokenizer) -> list[Feature]:
    """Classification features in the columns of the task's GLUE schema."""
    g = glue.spec(task)
    return encode_classification(split_rows, tokenizer, task.max_length, g.text_columns, g.regression)


def train_features(task: TaskParams, split_rows: list[dict], tokenizer) -> list[Feature]:
    """Labelled features for training."""
    if task.type == "classification":
        return _encode(task, split_rows, tokenizer)
    feats = qa.prepare_train_features(split_rows, tokenizer, task.max_length, task.doc_stride)
    return encode_qa_features(feats, with_labels=True)


def logits(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, ...]:
    """The task logits of a batch (labels stripped): ``((B, C),)`` or ``((B, T), (B, T))`` for QA."""
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "start_positions", "end_positions")}
    out = model(**inputs)
    if hasattr(out, "start_logits"):
        return out.start_logits, out.end_logits
    return (out.logits,)


def hard_loss(task: TaskParams, outputs: tuple[torch.Tensor, ...], batch: Batch) -> torch.Tensor:
    """Cross-entropy against the gold labels (mean of start/end losses for QA); MSE for regression
    (``num_labels == 1``: outputs ``(B, 1)``, float labels ``(B,)``)."""
    ce = torch.nn.functional.cross_entropy
    if task.type == "classification":
        if task.num_labels == 1:
            return torch.nn.functional.mse_loss(outputs[0].squeeze(-1), batch["labels"].to(outputs[0].dtype))
        return ce(outputs[0], batch["labels"])
    return (ce(outputs[0], batch["start_positions"]) + ce(outputs[1], batch["end_positions"])) / 2


@torch.inference_mode()
def _all_logits(model, feats: list[Feature], pad_id: int, batch_size: int, device) -> list[np.ndarray]:
    """Concatenated logits over ``feats``, padded to a common length for QA: list of ``(N, ...)``."""
    model.eval()
    chunks: list[list[np.ndarray]] = []
    for batch in batches(feats, batch_size, lambda f: collate(f, pad_id)):
        outs = logits(model, {k: v.to(device) for k, v in batch.items()})
        chunks.append([o.float().cpu().numpy() for o in outs])
    result = []
    for i in range(len(chunks[0])):
        parts = [c[i] for c in chunks]
        if parts[0].ndim == 2 and len({p.shape[1] for p in parts}) > 1:  # QA: pad seq dims
            width = max(p.shape[1] for p in parts)
            parts = [np.pad(p, ((0, 0), (0, width - p.shape[1])), constant_values=-1e4) for p in parts]
        result.append(np.concatenate(parts))
    return result


def evaluate(model, task: TaskParams, split_rows: list[dict], tokenizer, batch_size: int, device) -> dict:
    """Task metrics on ``split_rows``.

    Returns:
        classification: the GLUE task's metrics (:mod:`pipeline.glue`; fractions/correlations), by default
        ``{"accuracy", "f1"}``; QA: ``{"exact_match", "f1"}`` (0-100), or with
        ``version_2_with_negative`` the SQuAD v2 set of :func:`pipeline.metrics.squad_v2`; plus
        ``bleu``/``rouge1``/``rouge2``/``rougeL`` (0-100) when ``text_metrics`` asks for them.
    """
    return scored_logits(model, task, split_rows, tokenizer, batch_size, device)[0]


def scored_logits(model, task: TaskParams, split_rows: list[dict], tokenizer, batch_size: int,
                  device) -> tuple[dict, np.ndarray | None]:
    """Task metrics on ``split_rows`` and, for classification, the logits they were computed from.

    One pass over the data serves both, so diagnostics (confusion matrix, ROC) need no second forward pass.

    Returns:
        ``(scores, logits)``: ``scores`` as :func:`evaluate` describes; ``logits`` ``(N, C)`` float32 in
        ``split_rows`` order for classification (C == 1 for regression), None for QA.
    """
    pad_id = tokenizer.pad_token_id
    if task.type == "classification":
        g = glue.spec(task)
        (logit,) = _all_logits(model, _encode(task, split_rows, tokenizer), pad_id, batch_size, device)
        return glue.score(g, logit, [r["label"] for r in split_rows]), logit
    refs = {r["id"]: list(r["answers"]["text"]) for r in split_rows}
    if not task.version_2_with_negative:
        unanswerable = [qid for qid, golds in refs.items() if not golds]
        if unanswerable:
            raise PipelineError(
                f"question {unanswerable[0]!r} (+{len(unanswerable) - 1} more) has no answer: for SQuAD v2 data "
                "set tasks.<task>.version_2_with_negative: true"
            )
    features = qa.prepare_eval_features(split_rows, tokenizer, task.max_length, task.doc_stride)
    feats = encode_qa_features(features, with_labels=False)
    start, end = _all_logits(model, feats, pad_id, batch_size, device)
    spans = {"n_best_size": task.n_best_size, "max_answer_length": task.max_answer_length}
    if task.version_2_with_negative:
        v2 = qa.postprocess_predictions_v2(
            split_rows, features, start, end, null_score_diff_threshold=task.null_score_diff_threshold, **spans
        )
        # The best non-null answers, so that the threshold search sees what each question would get.
        scores, preds = metrics.squad_v2(v2.answers, refs, v2.score_diffs, task.null_score_diff_threshold), v2.predictions
    else:
        preds = qa.postprocess_predictions(split_rows, features, start, end, **spans)
        scores = metrics.squad_v1(preds, refs)
    if task.text_metrics:
        scores.update(_answer_text_metrics(task.text_metrics, preds, refs))
    return scores, None


def _answer_text_metrics(names: list[str], preds: dict[str, str], refs: dict[str, list[str]]) -> dict[str, float]:
    """BLEU/ROUGE (percentages) of the predicted answers against the golds of the answerable questions.

    Texts are SQuAD-normalised and split on whitespace; unanswerable questions are left out (an empty
    reference has no n-grams to match), a "" prediction for an answerable one counts as an empty text.
    """
    hyps, golds = [], []
    for qid, answers in refs.items():
        tokenized = [toks for toks in (metrics.normalize_answer(a).split() for a in answers) if toks]
        if tokenized:
            hyps.append(metrics.normalize_answer(preds[qid]).split())
            golds.append(tokenized)
    if not hyps:
        return {}
    return text_metrics.compute(names, hyps, golds)


def evaluate_splits(model, task: TaskParams, data_dir: str | Path, tokenizer, batch_size: int,
                    device) -> tuple[dict, np.ndarray | None]:
    """:func:`scored_logits` on every validation split of the task present in ``data_dir``.

    ``validation`` is reported under the plain metric names; further splits of a GLUE task (MNLI's
    ``validation_mismatched``) under names with their suffix (``accuracy_mismatched``) when prepared.

    Returns:
        ``(scores, logits)``: all splits' metrics, and the ``validation`` split's classification logits
        (None for QA).
    """
    splits = glue.spec(task).eval_splits if task.type == "classification" else {"validation": ""}
    out, logit = scored_logits(model, task, rows(task, data_dir, "validation"), tokenizer, batch_size, device)
    for split, suffix in splits.items():
        if split != "validation" and (Path(data_dir) / f"{split}.jsonl").is_file():
            scores = evaluate(model, task, rows(task, data_dir, split), tokenizer, batch_size, device)
            out.update({f"{k}{suffix}": v for k, v in scores.items()})
    return out, logit


def primary_metric(task: TaskParams) -> str:
    """The metric reports sort by: the GLUE task's (accuracy by default) for classification, F1 for QA."""
    return glue.spec(task).primary if task.type == "classification" else "f1"


def train_task(
    model: torch.nn.Module,
    task: TaskParams,
    data_dir: str | Path,
    tokenizer,
    args: TrainArgs,
    device: torch.device,
    desc: str,
    loss_fn: LossFn | None = None,
    after_step=None,
    eval_batch_size: int = 64,
    files: RunFiles | None = None,
) -> tuple[list[dict], dict]:
    """Train on the task's train split, scoring the validation split after every epoch.

    Args:
        loss_fn: ``(model, batch) -> loss``; defaults to the hard-label task loss.
        after_step: called after each optimiser step (e.g. to keep pruning masks applied).
        files: where the curves and the resumable checkpoint go (see :class:`pipeline.train.RunFiles`).

    Returns:
        ``(history, final validation metrics)``.
    """
    valid = rows(task, data_dir, "validation")
    feats = train_features(task, rows(task, data_dir, "train"), tokenizer)
    pad_id = tokenizer.pad_token_id
    history = fit(
        model,
        feats,
        lambda f: collate(f, pad_id),
        args,
        device,
        desc,
        loss_fn=loss_fn or (lambda m, b: hard_loss(task, logits(m, b), b)),
        after_step=after_step,
        on_epoch=lambda epoch, m: evaluate(m, task, valid, tokenizer, eval_batch_size, device),
        files=files,
    )
    return history, {k: v for k, v in history[-1].items() if k not in ("epoch", "loss")}


def trainer(task: TaskParams, data_dir: str | Path, tokenizer, args: TrainArgs, device: torch.device, desc: str,
            files: RunFiles | None = None):
    """A ``(model, make_hook) -> {"history", "pruner"}`` callable for methods that prune while training.

    ``make_hook(total_steps)`` builds the after-step hook once the number of optimizer steps is known;
    ``loss_fn`` (default: the hard-label task loss) lets a method add its own term, e.g. a penalty.
    """

    def train(model: torch.nn.Module, make_hook, loss_fn: LossFn | None = None) -> dict:
        total = total_steps(len(train_features(task, rows(task, data_dir, "train"), tokenizer)), args)
        hook = make_hook(total)
        history, _ = train_task(model, task, data_dir, tokenizer, args, device, desc, loss_fn=loss_fn,
                                after_step=hook, files=files)
        return {"history": history, "pruner": hook}

    return train
