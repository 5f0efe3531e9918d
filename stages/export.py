"""Stage export: a float artifact exported to ONNX and quantized with ONNX Runtime dynamic int8; both graphs are
checked against the PyTorch logits and written as artifacts the evaluate stage scores like any other."""

import argparse
import sys
from pathlib import Path

from pipeline import tasks
from pipeline.config import loader
from pipeline.core.errors import stage_main
from pipeline.export import GraphParams, Int8Params
from pipeline.stages.export import export_stage
from pipeline.quantize import LogitErrorParams


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", required=True, help="task name in params.yaml tasks")
    p.add_argument("--metrics", type=Path, required=True, help="JSON of both graphs' logit errors and sizes")
    p.add_argument("source", type=Path, help="float artifact to export")
    p.add_argument("data", type=Path, help="task data directory (validation inputs for the logit error)")
    p.add_argument("out", type=Path, help="output artifact: the float32 graph (format onnx)")
    p.add_argument("out_int8", type=Path, help="output artifact: its dynamic int8 version (format onnx_int8)")
    return p


def reads(args) -> dict[str, type]:
    return {f"tasks.{args.task}": tasks.TaskParams, "export.onnx": GraphParams, "export.int8": Int8Params,
            "export.logit_error": LogitErrorParams}


@stage_main("export")
def main(argv=None):
    args = parser().parse_args(argv)
    task_params, graph, int8, error = loader.load(reads(args))
    export_stage(task_params, graph, int8, error, args.task, args.source, args.data, args.out, args.out_int8,
                 args.metrics)


if __name__ == "__main__":
    sys.exit(main())
