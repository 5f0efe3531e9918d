"""BERT's pretraining objective: masked LM plus next-sentence prediction (``pretrain.objective: mlm_nsp``).

Sentence pairs come from the corpus read as one stream of sentences in corpus order (every line split
after ``.``, ``?`` or ``!``): for each sentence A, B is the sentence after it with probability 1/2 (label 0,
"is next") or a random other sentence of the split (label 1), as in Devlin et al. (2019). Both segments are
masked for MLM. The model trained is :class:`transformers.BertForPreTraining` (the MLM head plus a pooler
and a two-way classifier); afterwards its encoder and MLM head are copied back into the stage's masked-LM
model, so the artifact is an ``mlm`` model like the one plain MLM writes, and the NSP classifier and the
pooler it trained are dropped (metrics keep the NSP accuracy). Only BERT has a next-sentence head.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Literal

import torch

from pipeline.config.args import TrainArgs
from pipeline.core.errors import PipelineError
from pipeline.data.features import Feature, MlmCollator, batches, encode_text
from pipeline.models import families
from pipeline.models.build import head_class
from pipeline.pretrain.mlm import EVAL_MASK_SEED, MlmParams, perplexity, pretrain
from pipeline.train.loop import fit
from pipeline.train.run_files import RunFiles

Objective = Literal["mlm", "mlm_nsp"]
"""``pretrain.objective``: masked LM only, or masked LM plus next-sentence prediction (BERT only)."""
SENTENCE_END = re.compile(r"(?<=[.?!])\s+")
# Pairs of the held-out split are fixed so NSP accuracies compare across epochs and runs.
EVAL_PAIR_SEED = 4321


def sentences(rows: list[dict]) -> list[str]:
    """The ``text`` of ``rows`` split into sentences, in corpus order (empty pieces dropped)."""
    return [s for r in rows for s in SENTENCE_END.split(r["text"].strip()) if s]


def sentence_pairs(rows: list[dict], seed: int) -> list[tuple[str, str, int]]:
    """``(A, B, label)`` for every sentence A but the last: B follows A (label 0) or, with probability 1/2,
    is a random sentence other than A and its successor (label 1). Seeded by ``seed`` only.

    Raises:
        PipelineError: fewer than three sentences (no random "not next" sentence exists).
    """
    sents = sentences(rows)
    if len(sents) < 3:
        raise PipelineError(f"next-sentence prediction needs at least 3 sentences, the corpus split has {len(sents)}")
    rng = random.Random(f"nsp-{seed}")
    pairs = []
    for i in range(len(sents) - 1):
        if rng.random() < 0.5:
            pairs.append((sents[i], sents[i + 1], 0))
        else:
            j = rng.randrange(len(sents) - 2)  # an index of the sentences other than i and i + 1
            pairs.append((sents[i], sents[j + 2 if j >= i else j], 1))
    return pairs


def encode_pairs(pairs: list[tuple[str, str, int]], tokenizer, max_length: int) -> list[Feature]:
    """Tokenised pairs (``[CLS] A [SEP] B [SEP]``, segment ids when the tokenizer makes them, truncated
    longest-first) with ``next_sentence_label``."""
    enc = tokenizer([a for a, _, _ in pairs], [b for _, b, _ in pairs], truncation=True, max_length=max_length)
    return [{**{k: enc[k][i] for k in enc.keys()}, "next_sentence_label": label} for i, (_, _, label) in enumerate(pairs)]


@torch.inference_mode()
def nsp_accuracy(model, feats: list[Feature], tokenizer, probability: float, device, batch_size: int = 64) -> float:
    """Fraction of pairs whose next-sentence prediction is right (inputs masked as for training, with a fixed
    masking pattern)."""
    model.to(device).eval()
    collator = MlmCollator(tokenizer, probability, EVAL_MASK_SEED)
    right = total = 0
    for batch in batches(feats, batch_size, collator):
        batch = {k: v.to(device) for k, v in batch.items()}
        labels = batch.pop("next_sentence_label")
        batch.pop("labels")
        logits = model(**families.model_inputs(model, batch)).seq_relationship_logits
        right += int((logits.argmax(-1) == labels).sum())
        total += labels.numel()
    return right / max(1, total)


def mlm_nsp_loss(model: torch.nn.Module, batch) -> dict[str, torch.Tensor]:
    """BERT's pretraining loss as its two terms (their sum is transformers' ``BertForPreTraining`` loss, the
    same operations): ``tokens``, the masked-LM cross-entropy, a mean over the labelled tokens
    (``labels != -100``); ``examples``, the next-sentence cross-entropy, a mean per pair. Its ``items`` counts
    both, so the training loop weights each term by its own items (:data:`pipeline.train.loop.LossFn`)."""
    out = model(**{k: v for k, v in batch.items() if k not in ("labels", "next_sentence_label")})
    ce = torch.nn.CrossEntropyLoss()
    mlm = ce(out.prediction_logits.view(-1, out.prediction_logits.size(-1)), batch["labels"].view(-1))
    nsp = ce(out.seq_relationship_logits.view(-1, 2), batch["next_sentence_label"].view(-1))
    return {"tokens": mlm, "examples": nsp}


mlm_nsp_loss.items = lambda batch: {"tokens": int((batch["labels"] != -100).sum()),  # type: ignore[attr-defined]
                                    "examples": len(batch["labels"])}


def copy_weights_(target: torch.nn.Module, source: torch.nn.Module, allowed: tuple[str, ...]) -> None:
    """Load ``source``'s tensors into ``target`` by name; only names containing one of ``allowed`` may be
    missing from or left over in ``source`` (the heads one model has and the other lacks)."""
    result = target.load_state_dict(source.state_dict(), strict=False)
    tied = set(getattr(target, "_tied_weights_keys", None) or {})
    bad = [k for k in [*result.missing_keys, *result.unexpected_keys] if k not in tied and not any(a in k for a in allowed)]
    if bad:
        raise PipelineError(f"masked-LM and pretraining models do not match: {bad[:5]}")
    target.tie_weights()


def pretrain_nsp(model, train_rows, valid_rows, tokenizer, mlm: MlmParams, args: TrainArgs, device, desc: str,
                 files: RunFiles | None = None) -> list[dict]:
    """MLM + NSP training of the masked-LM ``model`` (a BERT), in place; returns per-epoch ``{"epoch", "loss",
    "perplexity", "nsp_accuracy"}`` (MLM perplexity on ``valid_rows`` lines, NSP accuracy on their pairs).

    Raises:
        PipelineError: the model is not a BERT (no next-sentence head), or the corpus is too small.
    """
    if "pretraining" not in families.of(model).heads:
        raise PipelineError(f"pretrain.objective mlm_nsp needs a BERT model (the family with a next-sentence head); "
                            f"this one is {model.config.model_type}: use objective mlm")
    cls = head_class("pretraining", model.config.model_type)
    torch.manual_seed(args.seed)  # the pooler and the NSP classifier start from the run's seed
    both = cls(model.config)
    copy_weights_(both, model, ("pooler.", "seq_relationship."))
    train = encode_pairs(sentence_pairs(train_rows, args.seed), tokenizer, mlm.max_length)
    valid = encode_pairs(sentence_pairs(valid_rows, EVAL_PAIR_SEED), tokenizer, mlm.max_length)
    valid_lines = encode_text(valid_rows, tokenizer, mlm.max_length)

    def on_epoch(epoch: int, m: torch.nn.Module) -> dict:
        return {"perplexity": perplexity(m, valid_lines, tokenizer, mlm.probability, device),
                "nsp_accuracy": nsp_accuracy(m, valid, tokenizer, mlm.probability, device)}

    history = fit(both, train, MlmCollator(tokenizer, mlm.probability, args.seed), args, device, desc,
                  loss_fn=mlm_nsp_loss, on_epoch=on_epoch, files=files)
    copy_weights_(model, both.cpu(), ("pooler.", "seq_relationship."))
    return history


OBJECTIVES: dict[str, Callable[..., list[dict]]] = {"mlm": pretrain, "mlm_nsp": pretrain_nsp}
"""Training function per ``pretrain.objective``: ``(model, train_rows, valid_rows, tokenizer, mlm, train,
device, desc, files) -> history``."""
