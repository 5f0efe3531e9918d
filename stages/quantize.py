"""Stage quantize: one registered scheme of ``quantize.schemes`` (given by dvc.yaml's matrix; only its own
``quantize.<scheme>`` knobs are read), stored as SafeTensors, with the reloaded model's logit error measured."""

import argparse
import sys
from pathlib import Path

from pipeline import tasks
from pipeline.artifacts import load_model
from pipeline.config import loader
from pipeline.core.errors import PipelineError, stage_main
from pipeline.core.files import atomic_dir, parents, write_json
from pipeline.core.finite import name_variant
from pipeline.core.runtime import setup
from pipeline.data.features import batches, collate
from pipeline.data.tokenizer import load_tokenizer
from pipeline.models.store import META, save_model
from pipeline.quantize import SCHEMES, LogitErrorParams, logit_error, quantize_model


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", required=True, help="task name in params.yaml tasks")
    p.add_argument("--scheme", required=True, help="registered scheme (an entry of params.yaml quantize.schemes)")
    p.add_argument("source", type=Path, help="artifact to quantize")
    p.add_argument("data", type=Path, help="task data directory (validation inputs for the logit error)")
    p.add_argument("out", type=Path, help="output artifact directory")
    return p


def reads(args) -> dict[str, type]:
    knobs = SCHEMES.get(args.scheme, "quantize.schemes").params
    return {f"tasks.{args.task}": tasks.TaskParams, f"quantize.{args.scheme}": knobs, "quantize.logit_error": LogitErrorParams}


@stage_main("quantize")
def main(argv=None):
    args = parser().parse_args(argv)
    task_params, cfg, error = loader.load(reads(args))
    task, scheme = tasks.get(task_params), SCHEMES.get(args.scheme)
    setup(0)
    (model, meta), tokenizer = load_model(args.source, task.head), load_tokenizer(args.source)
    if meta["format"] != "dense":
        raise PipelineError(f"{args.source}: already quantized ({meta['format']}); quantize a dense artifact")
    task.check(args.task, {args.source: model}, tokenizer, args.data, splits=("validation",))
    tensors, description = quantize_model(model, scheme.name, cfg)
    feats = task.first_features(task.rows(args.data, "validation"), tokenizer, 32 * error.batches)
    data = list(batches(feats, 32, lambda f: collate(f, tokenizer.pad_token_id)))
    out_meta = {"stage": "quantize", "head": meta["head"], "format": scheme.name, "method": scheme.name,
                "task": meta.get("task"), "quantization": description, "parents": parents(args.source, args.data),
                "params": loader.as_dict({"task": task_params, scheme.name: cfg, "logit_error": error})}
    with atomic_dir(args.out) as tmp:
        save_model(tmp, model, args.source, out_meta, tensors=tensors)
        # Measured on the model rebuilt from the written files, exactly as later stages will load it.
        out_meta["results"] = logit_error(model, name_variant(load_model(tmp)[0], args.out), data, task.logits)
        write_json(tmp / META, out_meta)


if __name__ == "__main__":
    sys.exit(main())
