"""An ONNX graph behind the transformers model interface: :class:`OrtModel`, run by ONNX Runtime on the CPU.

The task code calls a model as ``model(**batch)`` and reads ``.logits`` (classification) or ``.start_logits`` /
``.end_logits`` (QA); :class:`OrtModel` takes the same keyword tensors, runs them through an
``onnxruntime.InferenceSession`` and returns the same transformers output classes, so scoring, latency timing
and the logit-error check treat an ONNX artifact like any PyTorch model.

Threads follow PyTorch's setting: the session runs with ``torch.get_num_threads()`` intra-op threads, read
at each call (the session is rebuilt when it changed), so ``torch.set_num_threads`` (the evaluate stage's
``threads``) applies to both runtimes alike. Idle ONNX Runtime threads do not spin-wait, which would steal
CPU time from a PyTorch model timed right after.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers.modeling_outputs import QuestionAnsweringModelOutput, SequenceClassifierOutput

from pipeline.core.errors import PipelineError
from pipeline.export import GRAPH
from pipeline.export.libraries import onnxruntime as ort
from pipeline.models import families

_state = ort.capi.onnxruntime_pybind11_state
LOAD_ERRORS = (_state.Fail, _state.InvalidGraph, _state.InvalidProtobuf, _state.NoSuchFile, _state.InvalidArgument)
"""What ONNX Runtime raises for a file it cannot load (a truncated or corrupt graph, an unknown operator)."""


def session_options(threads: int) -> ort.SessionOptions:
    """CPU settings: ``threads`` intra-op threads without spin-waiting, operators run one at a time, every graph
    optimization of ONNX Runtime (constant folding, operator fusions), errors-only logging."""
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class OrtModel(torch.nn.Module):
    """A task model whose forward pass is an ONNX Runtime CPU session.

    Args:
        path: the ``.onnx`` file.
        head: ``classification`` (returns :class:`SequenceClassifierOutput`, ``logits`` ``(B, C)``) or ``qa``
            (:class:`QuestionAnsweringModelOutput`, ``start_logits`` and ``end_logits`` ``(B, T)``).
        config: the transformers config of the model the graph was exported from (``model.config``).
        position_table: ``(rows, rows before the first token)`` of that model's absolute position embeddings,
            or None for a model without them (:func:`pipeline.models.structure.position_table`, which reads
            this attribute since the graph has no modules to read it from; recorded at export).
    """

    def __init__(self, path: str | Path, head: str, config=None, position_table: tuple[int, int] | None = None):
        super().__init__()
        if head not in ("classification", "qa"):
            raise PipelineError(f"{path}: no ONNX runtime wrapper for a '{head}' model (classification, qa)")
        self.path, self.head, self.config, self.position_table = str(path), head, config, position_table
        self._session: ort.InferenceSession | None = None
        self._threads = 0

    def session(self) -> ort.InferenceSession:
        """The session, (re)built for the current ``torch.get_num_threads()``.

        Raises:
            PipelineError: ONNX Runtime cannot load the graph (a truncated or corrupt file, an unknown operator).
        """
        threads = torch.get_num_threads()
        if self._session is None or threads != self._threads:
            try:
                self._session = ort.InferenceSession(self.path, session_options(threads),
                                                     providers=["CPUExecutionProvider"])
            except LOAD_ERRORS as err:
                reason = str(err).splitlines()[0][:200]
                raise PipelineError(f"{self.path}: ONNX Runtime cannot load it ({reason})") from None
            self._threads = threads
        return self._session

    def forward(self, **inputs: torch.Tensor | None):
        """Run the graph on keyword ``(B, T)`` integer tensors (None values count as not given).

        Raises:
            ValueError: an input the graph lacks or a graph input not given (named).
        """
        given = {k: v for k, v in inputs.items() if v is not None}
        session = self.session()
        expected = [i.name for i in session.get_inputs()]
        unknown, missing = sorted(set(given) - set(expected)), [n for n in expected if n not in given]
        if unknown or missing:
            raise ValueError(f"{self.path}: the graph takes {expected}; unknown {unknown}, missing {missing}")
        feeds = {k: v.detach().cpu().numpy() for k, v in given.items()}
        names = [o.name for o in session.get_outputs()]
        outputs = dict(zip(names, (torch.from_numpy(a) for a in session.run(None, feeds))))
        if self.head == "qa":
            return QuestionAnsweringModelOutput(start_logits=outputs["start_logits"], end_logits=outputs["end_logits"])
        return SequenceClassifierOutput(logits=outputs["logits"])


def load(root: Path, meta: dict) -> OrtModel:
    """The :class:`OrtModel` of an ONNX artifact (``model.onnx``, the ``config.json`` it was exported with and
    the position table recorded in ``pipeline.json``).

    Raises:
        PipelineError: ONNX Runtime cannot load the graph (named).
    """
    model_type = json.loads((root / "config.json").read_text()).get("model_type")
    config = families.family(model_type).config_class.from_pretrained(str(root))
    table = meta["onnx"]["position_table"]
    model = OrtModel(root / GRAPH, meta["head"], config, tuple(table) if table is not None else None).eval()
    model.session()  # a graph ONNX Runtime cannot load fails here, before any data is read
    return model
