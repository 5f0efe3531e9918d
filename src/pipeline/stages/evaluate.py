"""The evaluate stage's work (``stages/evaluate.py``): task metrics, predictions, diagnostics, model facts,
memory and speed of one artifact, timed against the dense baseline."""

from __future__ import annotations

from pathlib import Path

from pipeline import tasks
from pipeline.config import loader
from pipeline.core.runtime import setup
from pipeline.data.tokenizer import load_tokenizer
from pipeline.evaluation import EvaluateParams
from pipeline.evaluation.facts import model_facts
from pipeline.evaluation.kernel import fast_model, timed
from pipeline.evaluation.lineage import lineage
from pipeline.evaluation.memory import device_memory, start_memory
from pipeline.evaluation.outputs import OutputPaths, identity, write_outputs
from pipeline.evaluation.speed import latency_inputs
from pipeline.evaluation.scoring import task_metrics
from pipeline.artifacts import load_model


def evaluate_stage(task_params: tasks.TaskParams, cfg: EvaluateParams, task_name: str, model_dir: Path,
                   baseline_dir: Path, data: Path, paths: OutputPaths) -> None:
    """Evaluate the artifact ``model_dir`` on the task's validation split and write ``paths``.

    Args:
        task_name: the task's name (``tasks.<task_name>`` gave ``task_params``).
        baseline_dir: the dense fine-tuned artifact, timed alongside for the speed-ups.
        data: the task's data directory.

    Writes: every file of ``paths`` (task metrics, facts, speed and memory, details, predictions), each headed
    by the variant's identity and lineage.

    Raises:
        PipelineError: models, tokenizer or data that do not fit the task, or an artifact the evaluation
        cannot run.
    """
    task = tasks.get(task_params)
    device = setup(0)
    model, meta = load_model(model_dir, task.head)
    baseline = load_model(baseline_dir, task.head)[0]
    tokenizer = load_tokenizer(model_dir)  # checked below with the task against both models and the data
    task.check(task_name, {model_dir: model, baseline_dir: baseline}, tokenizer, data, ("validation",))

    def inputs(batch_size: int):
        return latency_inputs(task, data, tokenizer, batch_size)

    plan, model, kernel = fast_model(model, model_dir, meta, device, lambda: inputs(1))  # as its kernel runs it
    batches = {"bs1": inputs(1), "large": inputs(cfg.latency_batch_size)} if cfg.memory else {}  # {}: no CPU RSS
    with start_memory(model_dir, task.head, batches, cfg.threads) as memory:
        measured = task_metrics(task, model, data, tokenizer, cfg.batch_size, plan.where)
        facts = model_facts(model_dir)
        origin = lineage(model_dir, meta, data, baseline_dir, loader.as_dict(cfg))
        footprint = memory.result() | device_memory(model, inputs(cfg.latency_batch_size), plan.where)  # alone
    speed = {"device": str(device), **kernel, **timed(model, baseline, plan, inputs, cfg)}  # after the memory runs
    who = identity(task_name, model_dir, meta, task.primary_metric, measured.device, task.glue_task)
    write_outputs(paths, model_dir, who, origin, measured, facts, {**speed, **footprint}, meta)
