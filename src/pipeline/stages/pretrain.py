"""The pretrain stage's work (``stages/pretrain.py``): masked-LM (BERT: optionally + next-sentence) training
of the base model on one corpus shard (one run of ``pretrain.runs``)."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import loader
from pipeline.config.args import LaunchParams, TrainArgs
from pipeline.core.files import parents, write_json
from pipeline.core.runtime import is_main, setup
from pipeline.data.io import read_split
from pipeline.data.tokenizer import load_tokenizer
from pipeline.artifacts import load_model
from pipeline.models.store import write_artifact
from pipeline.pretrain.mlm import MlmParams, PretrainRun, check_mlm, run_rows
from pipeline.pretrain.nsp import OBJECTIVES, Objective
from pipeline.train.run_files import RunFiles


def pretrain_stage(objective: Objective, mlm: MlmParams, train: TrainArgs, run: PretrainRun, launch: LaunchParams,
                   run_name: str, base_dir: Path, corpus: Path, out: Path, metrics: Path,
                   live: Path | None = None) -> None:
    """Train the base MLM artifact ``base_dir`` on the run's shard of ``corpus`` and write ``out``.

    Args:
        run_name: the run's name (``pretrain.runs.<run_name>`` gave ``run``, whose seed replaces ``train.seed``).
        corpus: the corpus data directory (its validation split gives the perplexity per epoch).
        metrics: JSON file of the last epoch's perplexity and loss and every epoch's record (rank 0 only).
        live: dvclive directory for the training curves (None: none written).

    Writes: the artifact ``out``, ``metrics``, the curves into ``live``, and a resumable checkpoint beside
    ``out`` until the artifact is written.

    Raises:
        PipelineError: a shard the corpus cannot give, or an MLM setting the base model cannot run.
    """
    rows = run_rows(corpus, run_name, run, mlm)
    device = setup(run.seed, launch)
    files = RunFiles.beside(out, live)
    train.seed = run.seed
    model, _ = load_model(base_dir, "mlm")
    tokenizer = load_tokenizer(base_dir)
    check_mlm(mlm, model, tokenizer, str(base_dir))
    history = OBJECTIVES[objective](model, rows, read_split(corpus, "validation", "text"), tokenizer, mlm,
                                    train, device, f"pretrain {run_name}", files)
    meta = {"stage": "pretrain", "head": "mlm", "format": "dense", "method": objective, "run": run_name,
            "parents": parents(base_dir, corpus), "history": history,
            "params": loader.as_dict({"mlm": mlm, "train": train, "run": run})}
    write_artifact(out, model, base_dir, meta)
    if is_main():
        write_json(metrics, {"perplexity": history[-1]["perplexity"], "loss": history[-1]["loss"],
                             "epochs": {str(h["epoch"]): h for h in history}})
    files.done()
